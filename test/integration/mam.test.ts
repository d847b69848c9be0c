// Message archive (XEP-0313) and carbons (XEP-0280) with a real client library over STARTTLS:
// two devices of one account and a friend, paging through thousands of archived messages,
// and a full-text search.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type JsClient, type XmlEl } from '../helpers/xmpp-js';

const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_SID = 'urn:xmpp:sid:0';
const FULLTEXT = '{urn:xmpp:fulltext:0}fulltext';

/** The body a device sees in a stanza: the message's own, or the one inside a carbon copy. */
function seen(el: XmlEl): { body: string; how: 'direct' | 'sent' | 'received' } | undefined {
  if (el.name !== 'message') return undefined;
  for (const how of ['sent', 'received'] as const) {
    const wrapper = el.getChild(how, NS_CARBONS);
    if (wrapper) return { body: wrapper.getChild('forwarded', NS_FORWARD).getChild('message').getChildText('body'), how };
  }
  const body = el.getChildText('body');
  return body === null || body === undefined ? undefined : { body, how: 'direct' };
}

describe('archive and carbons between real clients', () => {
  let t: TestServer;
  const clients: JsClient[] = [];
  const login = async (username: string, resource: string) => {
    const c = await jsClient({ port: t.port, username, password: 'pw-' + username, resource });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startTestServer({}, { 'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob', 'erin@localhost': 'pw-erin', 'frank@localhost': 'pw-frank' });
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  /** Runs a MAM query; resolves with the result messages (in the order they came) and the <fin/>. */
  async function mam(c: JsClient, queryid: string, opts: { fields?: Record<string, string>; max?: number; after?: string; before?: string } = {}) {
    const { xml } = c;
    const form = opts.fields && xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_MAM)),
      ...Object.entries(opts.fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
    const set = xml('set', { xmlns: NS_RSM },
      opts.max !== undefined ? xml('max', {}, String(opts.max)) : undefined,
      opts.after !== undefined ? xml('after', {}, opts.after) : undefined,
      opts.before !== undefined ? xml('before', {}, opts.before) : undefined);
    const reply = await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_MAM, queryid }, form, set)), 20_000);
    // The results come before the IQ result on the same stream: they are all in the inbox now.
    const results = c.inbox.filter((el: XmlEl) => el.name === 'message' && el.getChild('result', NS_MAM)?.attrs.queryid === queryid);
    for (const r of results) c.inbox.splice(c.inbox.indexOf(r), 1);
    const fin = reply.getChild('fin', NS_MAM);
    const rsm = fin.getChild('set', NS_RSM);
    return {
      results,
      bodies: results.map((r: XmlEl) => r.getChild('result', NS_MAM).getChild('forwarded', NS_FORWARD).getChild('message').getChildText('body') as string),
      complete: fin.attrs.complete === 'true',
      first: rsm.getChildText('first') as string | undefined,
      last: rsm.getChildText('last') as string | undefined,
    };
  }

  it('shows the whole conversation on both devices of an account that enabled carbons', async () => {
    const phone = await login('alice', 'phone');
    const laptop = await login('alice', 'laptop');
    const bob = await login('bob', 'desk');
    const { xml } = phone;
    for (const device of [phone, laptop]) await device.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS_CARBONS })));
    for (const c of [phone, laptop, bob]) await c.send(xml('presence'));
    await new Promise((r) => setTimeout(r, 200));

    const lines: [JsClient, string, string][] = [
      [bob, 'alice@localhost', 'hello alice (to the bare JID)'],
      [phone, 'bob@localhost/desk', 'hi bob, from my phone'],
      [bob, 'alice@localhost/phone', 'answering the phone'],
      [laptop, 'bob@localhost', 'switching to the laptop'],
      [bob, 'alice@localhost/laptop', 'answering the laptop'],
    ];
    /** What each device shows: the lines it typed and the ones it received, directly or as copies. */
    const views = new Map<JsClient, XmlEl[]>([[phone, []], [laptop, []], [bob, []]]);
    for (const [from, to, body] of lines) {
      await from.send(xml('message', { to, type: 'chat' }, xml('body', {}, body)));
      views.get(from)!.push(xml('message', { to }, xml('body', {}, body)));
      // Every device has a line before the next is sent, so the order is the same everywhere.
      for (const device of [phone, laptop, bob]) {
        if (device === from || (device === bob && to.startsWith('bob') === false)) continue;
        views.get(device)!.push(await device.waitFor((el: XmlEl) => seen(el)?.body === body, 5000, `${body} on ${device.jid}`));
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    const bodies = lines.map(([, , body]) => body);
    for (const device of [phone, laptop]) {
      expect(views.get(device)!.map((el) => seen(el)!.body)).toEqual(bodies);
      expect(device.inbox.filter((el: XmlEl) => seen(el) !== undefined)).toEqual([]); // and nothing twice
    }
    // Copies come from the account's bare JID, and the phone's own lines are sent copies on the laptop.
    const copies = views.get(laptop)!.filter((el: XmlEl) => el.getChild('sent', NS_CARBONS) || el.getChild('received', NS_CARBONS));
    expect(copies.map((el: XmlEl) => el.attrs.from)).toEqual(['alice@localhost', 'alice@localhost']);
    expect(copies.map((el: XmlEl) => seen(el)!.how)).toEqual(['sent', 'received']);
    const sentCopy = copies[0].getChild('sent', NS_CARBONS).getChild('forwarded', NS_FORWARD).getChild('message');
    expect(sentCopy.getChild('stanza-id', NS_SID)?.attrs.by).toBe('alice@localhost');
    // bob only ever gets originals, each with his archive's id.
    const atBob = views.get(bob)!.filter((el: XmlEl) => el.attrs.from !== undefined);
    expect(atBob.map((el: XmlEl) => el.getChildText('body'))).toEqual(bodies.filter((_, i) => lines[i]![0] !== bob));
    for (const el of atBob) expect(el.getChildren('stanza-id', NS_SID).map((sid: XmlEl) => sid.attrs.by)).toEqual(['bob@localhost']);
    expect(bob.inbox.filter((el: XmlEl) => seen(el) !== undefined)).toEqual([]);

    // And the archive has the conversation once, on either device. The archived messages are
    // as sent, without the stanza-id their recipient's copy carried.
    const archived = await mam(laptop, 'conv');
    expect(archived.bodies).toEqual(bodies);
    expect(archived.complete).toBe(true);
    const forwarded = (r: XmlEl): XmlEl => r.getChild('result', NS_MAM).getChild('forwarded', NS_FORWARD).getChild('message');
    for (const c of [laptop, bob]) {
      const { results } = await mam(c, `sid-${c === bob ? 'bob' : 'alice'}`);
      expect(results.map((r: XmlEl) => forwarded(r).getChildren('stanza-id', NS_SID).length)).toEqual(bodies.map(() => 0));
      expect(results.map((r: XmlEl) => forwarded(r).attrs.from.split('/')[0])).toEqual(lines.map(([from]) => (from === bob ? 'bob@localhost' : 'alice@localhost')));
    }
  });

  it('pages through a few thousand archived messages forwards and backwards, and searches them', async () => {
    const erin = await login('erin', 'writer');
    const frank = await login('frank', 'reader');
    const { xml } = erin;
    const N = 2500;
    for (let i = 0; i < N; i++) await erin.send(xml('message', { to: 'frank@localhost/reader', type: 'chat' }, xml('body', {}, `line ${i} token${i}`)));
    await frank.waitFor((el: XmlEl) => el.getChildText?.('body') === `line ${N - 1} token${N - 1}`, 20_000, 'the last line');
    const expected = Array.from({ length: N }, (_, i) => `line ${i} token${i}`);

    // Forwards: pages of 250 from the start.
    const forwards: string[] = [];
    let after: string | undefined;
    for (let page = 0; ; page++) {
      const r = await mam(erin, `f${page}`, { max: 250, after });
      forwards.push(...r.bodies);
      if (r.complete) break;
      expect(r.bodies).toHaveLength(250);
      after = r.last;
    }
    expect(forwards).toEqual(expected);

    // Backwards: the last page first, then each page before it; pages stay in chronological order.
    const backwards: string[] = [];
    let before = '';
    for (let page = 0; ; page++) {
      const r = await mam(frank, `b${page}`, { max: 300, before });
      backwards.unshift(...r.bodies);
      if (r.complete) break;
      before = r.first!;
    }
    expect(backwards).toEqual(expected);

    // Full text, on both sides of the conversation.
    const found = await mam(frank, 'search', { fields: { [FULLTEXT]: 'TOKEN1234' } });
    expect(found.bodies).toEqual(['line 1234 token1234']);
    const withinRange = await mam(erin, 'search2', { fields: { [FULLTEXT]: 'line', with: 'frank@localhost' }, max: 3, before: '' });
    expect(withinRange.bodies).toEqual(expected.slice(-3));
  }, 60_000);
});
