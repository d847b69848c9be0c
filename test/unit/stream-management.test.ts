import { x } from '../../src/xml/element';
import { StreamManagement, parseH } from '../../src/stream/stream-management';
import { ClientState } from '../../src/stream/client-state';

describe('XEP-0198 counters', () => {
  it('keeps what the client has not acknowledged, oldest first', () => {
    const sm = new StreamManagement(true, 1000);
    for (const n of [1, 2, 3, 4]) sm.sent(x('message', { id: `m${n}` }));
    expect(sm.ack(1)).toBe(true);
    expect(sm.ack(1)).toBe(true); // the same h again changes nothing
    expect(sm.unackedCount).toBe(3);
    expect(sm.ack(3)).toBe(true);
    expect(sm.takeUnacked().map((m) => m.attrs.id)).toEqual(['m4']);
    expect(sm.unackedCount).toBe(0);
  });

  it('refuses an acknowledgement of more than was sent', () => {
    const sm = new StreamManagement(false, 0);
    sm.sent(x('message'));
    expect(sm.ack(2)).toBe(false);
    expect(sm.unackedCount).toBe(1);
  });

  it('wraps counters at 2^32', () => {
    const sm = new StreamManagement(false, 0);
    for (let i = 0; i < 3; i++) sm.handled();
    expect(sm.inbound).toBe(3);
    (sm as unknown as { sentCount: number }).sentCount = 2 ** 32 - 1;
    sm.sent(x('message', { id: 'a' }));
    sm.sent(x('message', { id: 'b' }));
    expect(sm.sendCount).toBe(1);
    expect(sm.ack(0)).toBe(true); // acknowledges 'a' (count 2^32 - 1 + 1 wraps to 0)
    expect(sm.takeUnacked().map((m) => m.attrs.id)).toEqual(['b']);
  });

  it('parses h as an unsigned 32-bit number', () => {
    expect(parseH('0')).toBe(0);
    expect(parseH('4294967295')).toBe(4294967295);
    for (const bad of [undefined, '', '-1', '1.5', '4294967296', 'x1', '99999999999']) expect(parseH(bad)).toBeUndefined();
  });
});

describe('XEP-0352 client state', () => {
  const presence = (from: string, status: string) => x('presence', { from }, x('status', null, status));

  it('passes everything through while active', () => {
    const cs = new ClientState();
    const p = presence('a@x/1', 'hi');
    expect(cs.offer(p)).toEqual([p]);
  });

  it('keeps only the latest presence per sender while inactive, and flushes before an urgent stanza', () => {
    const cs = new ClientState();
    cs.setInactive();
    expect(cs.offer(presence('a@x/1', 'one'))).toEqual([]);
    expect(cs.offer(presence('b@x/1', 'b'))).toEqual([]);
    expect(cs.offer(presence('a@x/1', 'two'))).toEqual([]);
    const typing = x('message', { from: 'a@x/1', type: 'chat' }, x('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
    expect(cs.offer(typing)).toEqual([]);
    const msg = x('message', { from: 'a@x/1', type: 'chat' }, x('body', null, 'hello'));
    const out = cs.offer(msg);
    expect(out.map((e) => e.getChildText('status') ?? e.name)).toEqual(['message', 'b', 'two', 'message']);
    expect(out[0]).toBe(typing);
    expect(out[3]).toBe(msg);
    expect(cs.offer(presence('c@x/1', 'later'))).toEqual([]);
    expect(cs.setActive().map((e) => e.getChildText('status'))).toEqual(['later']);
  });

  it('never holds subscription requests, IQs or errors', () => {
    const cs = new ClientState();
    cs.setInactive();
    for (const el of [x('presence', { type: 'subscribe', from: 'a@x' }), x('iq', { type: 'get' }), x('message', { type: 'error' })]) {
      expect(cs.offer(el)).toEqual([el]);
    }
  });
});
