// Interop with slixmpp (Debian's python3-slixmpp), the library behind many Python clients and
// bots, talking to an @xmpp/client user through the server: subscription, chat, offline.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type XmlEl } from '../helpers/xmpp-js';
import { SlixmppScript, slixmppAvailable } from '../helpers/slixmpp';

const available = slixmppAvailable();

/** test/interop/slixmpp_client.py: logs in, approves subscriptions, echoes chat, leaves on "quit". */
class Slixmpp extends SlixmppScript {
  constructor(port: number, jid: string, password: string) {
    super('slixmpp_client.py', [String(port), jid, password]);
  }
}

(available ? describe : describe.skip)('slixmpp and @xmpp/client through the server', () => {
  let t: TestServer;
  const procs: Slixmpp[] = [];
  beforeAll(async () => {
    // Default login throttling stays on: a client falling back between mechanisms must not be slowed.
    t = await startTestServer({ auth: { failureDelayMs: 1000 } }, { 'alice@localhost': 'alice-pw', 'bob@localhost': 'bob-pw' });
  });
  afterAll(async () => {
    for (const p of procs) p.kill();
    await t.stop();
  });

  it('subscribes, chats and delivers offline messages between the two libraries', async () => {
    const alice = await jsClient({ port: t.port, username: 'alice', password: 'alice-pw', resource: 'web' });
    const { xml } = alice;
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await alice.send(xml('presence'));

    const started = Date.now();
    const bob = new Slixmpp(t.port, 'bob@localhost/py', 'bob-pw');
    procs.push(bob);
    const online = await bob.waitFor((e) => e.event === 'online', 'login');
    expect(online.jid).toBe('bob@localhost/py');
    // slixmpp first tries SCRAM-*-PLUS with tls-unique, which TLS 1.3 lacks; falling back costs no penalty delay.
    expect(Date.now() - started).toBeLessThan(5000);

    // alice subscribes; slixmpp approves and subscribes back; alice approves.
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.type === 'subscribed' && el.attrs.from === 'bob@localhost', 10_000, 'subscribed');
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === 'bob@localhost', 10_000, 'subscribe back');
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.from === 'bob@localhost/py' && el.attrs.type === undefined, 10_000, "bob's presence");
    await bob.waitFor((e) => e.event === 'presence' && e.from === 'alice@localhost/web' && e.type === 'available', "alice's presence");

    // Chat both ways.
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'hello from xmpp.js')));
    const echo = await alice.waitFor((el: XmlEl) => el.name === 'message' && el.getChildText('body') === 'echo: hello from xmpp.js', 10_000, 'echo');
    expect(echo.attrs.from).toBe('bob@localhost/py');

    // bob leaves; alice sees it and writes while he is away.
    await alice.send(xml('message', { to: 'bob@localhost/py', type: 'chat' }, xml('body', {}, 'quit')));
    expect(await bob.exited).toBe(0);
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.from === 'bob@localhost/py' && el.attrs.type === 'unavailable', 10_000, 'unavailable');
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'while you were away')));
    await new Promise((r) => setTimeout(r, 300));

    const bobAgain = new Slixmpp(t.port, 'bob@localhost/py', 'bob-pw');
    procs.push(bobAgain);
    const stored = await bobAgain.waitFor((e) => e.event === 'message' && e.body === 'while you were away', 'offline message');
    expect(stored.from).toBe('alice@localhost/web');
    expect(stored.delay).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    await alice.stop();
  });

  it('refuses slixmpp with a wrong password', async () => {
    const bob = new Slixmpp(t.port, 'bob@localhost/py', 'wrong');
    procs.push(bob);
    await bob.waitFor((e) => e.event === 'failed_auth', 'failed_auth');
    bob.kill();
  });
});
