// Instant messaging end to end with a real client library over STARTTLS: roster, presence,
// chat, offline delivery, blocking, vCard and private storage.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type JsClient, type XmlEl } from '../helpers/xmpp-js';

const isPresence = (from: string, type?: string) => (el: XmlEl) =>
  el.name === 'presence' && String(el.attrs.from).startsWith(from) && el.attrs.type === type;
const isRosterPush = (jid: string, pred: (item: XmlEl) => boolean = () => true) => (el: XmlEl) => {
  const item = el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('query', 'jabber:iq:roster')?.getChild('item') : undefined;
  return item !== undefined && item.attrs.jid === jid && pred(item);
};

describe('instant messaging between real clients', () => {
  let t: TestServer;
  const clients: JsClient[] = [];
  const login = async (username: string, resource: string) => {
    const c = await jsClient({ port: t.port, username, password: 'pw-' + username, resource });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startTestServer({}, {
      'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob', 'carol@localhost': 'pw-carol', 'dave@localhost': 'pw-dave',
    });
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('subscribes both ways with roster pushes, then sees presence come and go', async () => {
    const alice = await login('alice', 'home');
    const bob = await login('bob', 'work');
    const { xml } = alice;
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await bob.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await alice.send(xml('presence'));
    await bob.send(xml('presence'));

    // alice asks bob; her roster shows the pending request.
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    await alice.waitFor(isRosterPush('bob@localhost', (i) => i.attrs.ask === 'subscribe' && i.attrs.subscription === 'none'), 5000, 'pending push');
    const request = await bob.waitFor(isPresence('alice@localhost', 'subscribe'), 5000, 'subscription request');
    expect(request.attrs.from).toBe('alice@localhost');

    // bob approves and asks back.
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await alice.waitFor(isPresence('bob@localhost', 'subscribed'), 5000, 'subscribed');
    await alice.waitFor(isRosterPush('bob@localhost', (i) => i.attrs.subscription === 'to'), 5000, 'to push');
    await alice.waitFor(isPresence('bob@localhost/work', undefined), 5000, "bob's presence");
    await alice.waitFor(isPresence('bob@localhost', 'subscribe'), 5000, "bob's request");
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await bob.waitFor(isRosterPush('alice@localhost', (i) => i.attrs.subscription === 'both'), 5000, 'both push');
    await bob.waitFor(isPresence('alice@localhost/home', undefined), 5000, "alice's presence");

    const roster = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const item = roster.getChild('query').getChild('item');
    expect(item.attrs).toMatchObject({ jid: 'bob@localhost', subscription: 'both' });

    // bob goes away: alice sees unavailable.
    await bob.stop();
    await alice.waitFor(isPresence('bob@localhost/work', 'unavailable'), 5000, 'unavailable');
  });

  it('delivers chat to a bare JID (highest priority resource) and to a full JID', async () => {
    const alice = await login('alice', 'desk');
    const carolA = await login('carol', 'a');
    const carolB = await login('carol', 'b');
    const { xml } = alice;
    await carolA.send(xml('presence', {}, xml('priority', {}, '5')));
    await carolB.send(xml('presence', {}, xml('priority', {}, '1')));
    await alice.send(xml('presence'));
    await new Promise((r) => setTimeout(r, 100));

    await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'to the bare JID')));
    const got = await carolA.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'to the bare JID');
    expect(got.attrs.from).toBe('alice@localhost/desk');
    await alice.send(xml('message', { to: 'carol@localhost/b', type: 'chat', id: 'm2' }, xml('body', {}, 'to b only')));
    await carolB.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'to b only');
    expect(carolA.inbox.some((el) => el.getChildText?.('body') === 'to b only')).toBe(false);
    expect(carolB.inbox.some((el) => el.getChildText?.('body') === 'to the bare JID')).toBe(false);
  });

  it('stores messages for an offline user and delivers them, with a delay stamp, after login', async () => {
    const alice = await login('alice', 'sender');
    const { xml } = alice;
    await alice.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, 'while you were out 1')));
    await alice.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, 'while you were out 2')));
    // Delivery is fire-and-forget: wait until the server has stored both.
    await new Promise((r) => setTimeout(r, 300));

    const dave = await login('dave', 'phone');
    await dave.send(xml('presence'));
    const first = await dave.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'while you were out 1');
    const second = await dave.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'while you were out 2');
    for (const m of [first, second]) {
      const delay = m.getChild('delay', 'urn:xmpp:delay');
      expect(delay).toBeDefined();
      expect(delay.attrs.stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(m.attrs.from).toBe('alice@localhost/sender');
    }
    // Delivered once: a second login gets nothing more.
    await dave.stop();
    const again = await login('dave', 'tablet');
    await again.send(xml('presence'));
    await new Promise((r) => setTimeout(r, 300));
    expect(again.inbox.filter((el) => el.name === 'message')).toHaveLength(0);
  });

  it('blocks a contact (XEP-0191): their messages stop and ours to them are refused', async () => {
    const alice = await login('alice', 'blocker');
    const bob = await login('bob', 'blocked');
    const { xml } = alice;
    await alice.send(xml('presence'));
    await bob.send(xml('presence'));
    await alice.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'bob@localhost' }))));
    const list = await alice.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: 'urn:xmpp:blocking' })));
    expect(list.getChild('blocklist').getChildren('item').map((i: XmlEl) => i.attrs.jid)).toEqual(['bob@localhost']);

    await bob.send(xml('message', { to: 'alice@localhost/blocker', type: 'chat' }, xml('body', {}, 'can you hear me')));
    await alice.send(xml('message', { to: 'bob@localhost/blocked', type: 'chat', id: 'out1' }, xml('body', {}, 'hello?')));
    const err = await alice.waitFor((el) => el.name === 'message' && el.attrs.type === 'error' && el.attrs.id === 'out1');
    expect(err.getChild('error').getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBeDefined();
    expect(err.getChild('error').getChild('blocked', 'urn:xmpp:blocking:errors')).toBeDefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(alice.inbox.some((el) => el.getChildText?.('body') === 'can you hear me')).toBe(false);

    await alice.iq(xml('iq', { type: 'set' }, xml('unblock', { xmlns: 'urn:xmpp:blocking' })));
    await bob.send(xml('message', { to: 'alice@localhost/blocker', type: 'chat' }, xml('body', {}, 'better now')));
    await alice.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'better now');
  });

  it('stores a vCard that contacts can read, and private XML only its owner can read', async () => {
    const alice = await login('alice', 'profile');
    const bob = await login('bob', 'reader');
    const { xml } = alice;
    await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Liddell'))));
    const own = await alice.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    expect(own.getChild('vCard').getChildText('FN')).toBe('Alice Liddell');
    const theirs = await bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    expect(theirs.getChild('vCard').getChildText('FN')).toBe('Alice Liddell');
    await expect(bob.iq(xml('iq', { type: 'set', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Mallory')))))
      .rejects.toThrow(/forbidden|not-allowed|service-unavailable/);

    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:private' },
      xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: 'room@conference.localhost', name: 'Tea' })))));
    const stored = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('storage', { xmlns: 'storage:bookmarks' }))));
    expect(stored.getChild('query').getChild('storage').getChild('conference').attrs.name).toBe('Tea');
    await expect(bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('storage', { xmlns: 'storage:bookmarks' })))))
      .rejects.toThrow(/forbidden|service-unavailable/);
  });

  it('answers disco#info, version, time, ping and last activity for the server', async () => {
    const alice = await login('alice', 'disco');
    const { xml } = alice;
    const info = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query').getChildren('feature').map((f: XmlEl) => f.attrs.var);
    for (const ns of ['urn:xmpp:ping', 'jabber:iq:version', 'urn:xmpp:time', 'jabber:iq:last', 'vcard-temp', 'urn:xmpp:blocking', 'jabber:iq:private']) {
      expect(features).toContain(ns);
    }
    expect(info.getChild('query').getChild('identity').attrs).toMatchObject({ category: 'server', type: 'im' });
    const version = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
    expect(version.getChild('query').getChildText('name')).toBe('xmppd');
    const time = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('time', { xmlns: 'urn:xmpp:time' })));
    expect(time.getChild('time').getChildText('utc')).toMatch(/Z$/);
    const last = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
    expect(Number(last.getChild('query').attrs.seconds)).toBeGreaterThanOrEqual(0);
  });
});
