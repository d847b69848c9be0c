import { idOf } from '../../bench/scenarios/groupchat';
import { qualify } from '../../bench/lib/ws-client';
import { SCENARIOS } from '../../bench/scenarios';

describe('groupchat idOf', () => {
  const id = (s: string, tag = 'a') => idOf(Buffer.from(s), 0, s.length, tag.charCodeAt(0));
  it('reads sender and sequence from <tag><sender>-<seq>', () => {
    expect(id("<message from='r@c/n1' id='a3-17' type='groupchat'>")).toBe(3 * 1048576 + 17);
    expect(id("<message id=\"a0-0\">")).toBe(0);
  });
  it('is -1 for another tag, no dash, two dashes or no id', () => {
    expect(id("<message id='b3-17'>")).toBe(-1);
    expect(id("<message id='a317'>")).toBe(-1);
    expect(id("<message id='a3-1-7'>")).toBe(-1);
    expect(id("<message to='x'>")).toBe(-1);
  });
});

describe('ws qualify', () => {
  it('adds jabber:client to unqualified stanzas only', () => {
    expect(qualify("<message to='u1@localhost' id='w0'><body>x</body></message>")).toBe("<message xmlns='jabber:client' to='u1@localhost' id='w0'><body>x</body></message>");
    expect(qualify('<presence/>')).toBe("<presence xmlns='jabber:client'/>");
    expect(qualify("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")).toBe("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  });
});

describe('scenario registry', () => {
  it('has the new scenarios with the features they need', () => {
    const opt = (s: keyof typeof SCENARIOS) => (name: string) => SCENARIOS[s]!.options[name]?.default ?? '';
    expect(SCENARIOS.groupchat!.features?.(opt('groupchat'))).toEqual({ muc: true });
    expect(SCENARIOS.groupchat!.users(opt('groupchat'))).toBe(200);
    expect(SCENARIOS.archive!.features?.(opt('archive'))).toEqual({ mam: true, mamPrefill: 0 });
    expect(SCENARIOS.websocket!.features?.(opt('websocket'))).toEqual({ websocket: true });
  });
});
