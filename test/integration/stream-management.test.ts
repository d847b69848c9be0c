// XEP-0198 stream management and XEP-0352 client state indication over real sockets: a
// phone whose connection drops mid-conversation loses nothing and gets nothing twice.
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';
import { jsClient, loadXmppJs, type XmlEl } from '../helpers/xmpp-js';

const SM = 'urn:xmpp:sm:3';
const bodies = (text: string) => [...text.matchAll(/<body>([^<]*)<\/body>/g)].map((m) => m[1]);
const chat = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;
const tick = (ms = 150) => new Promise((r) => setTimeout(r, ms));

describe('stream management and client state', () => {
  let t: TestServer;
  const open: RawClient[] = [];
  const connect = async () => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    return c;
  };
  beforeAll(async () => {
    t = await startTestServer({ c2s: { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false }, sessions: { resumeTimeout: 2 } },
      { 'alice@localhost': 'a', 'bob@localhost': 'b', 'carol@localhost': 'c' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  async function smSession(user: string, password: string, resource: string): Promise<{ c: RawClient; id: string }> {
    const c = await connect();
    const features = await c.authenticate(user, password);
    expect(features).toContain(`<sm xmlns="${SM}"/>`);
    expect(features).toContain('<csi xmlns="urn:xmpp:csi:0"/>');
    c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    await c.waitFor(/<\/iq>/);
    c.send(`<enable xmlns='${SM}' resume='true'/>`);
    const m = await c.waitFor(/<enabled xmlns="urn:xmpp:sm:3" id="([^"]+)" resume="true" max="2"\/>/);
    c.send('<presence/>');
    c.text = c.text.slice(c.text.indexOf('<enabled'));
    return { c, id: m[1]! };
  }

  it('resumes after an abrupt disconnect and delivers every message exactly once, in order', async () => {
    const bob = await smSession('bob', 'b', 'phone');
    const alice = await connect();
    await alice.login('alice', 'a', 'desk');
    for (const n of [1, 2, 3]) alice.send(chat('bob@localhost/phone', `m${n}`));
    await bob.c.waitFor(/m3<\/body>/);
    // bob acknowledges everything up to the first message (his own presence came first), then his network vanishes.
    const upToM1 = bob.c.text.slice(0, bob.c.text.indexOf('m1</body>'));
    const h = (upToM1.match(/<(message|presence|iq)[ >]/g) ?? []).length;
    expect(h).toBeGreaterThanOrEqual(1);
    bob.c.send(`<a xmlns='${SM}' h='${h}'/>`);
    await tick();
    bob.c.close();
    await tick();
    for (const n of [4, 5]) alice.send(chat('bob@localhost/phone', `m${n}`));
    await tick();
    expect(t.server.core.sessions.get(t.server.core.accountJid('bob@localhost').withResource('phone'))).toBeDefined();

    const again = await connect();
    await again.authenticate('bob', 'b');
    again.send(`<resume xmlns='${SM}' previd='${bob.id}' h='${h}'/>`);
    await again.waitFor(/<resumed xmlns="urn:xmpp:sm:3" previd="[^"]+" h="\d+"\/>/);
    await again.waitFor(/m5<\/body>/);
    await tick();
    expect(bodies(again.text)).toEqual(['m2', 'm3', 'm4', 'm5']);
    // The resumed stream keeps counting: an ack request is answered with what the server handled.
    again.send(`<r xmlns='${SM}'/>`);
    await again.waitFor(/<a xmlns="urn:xmpp:sm:3" h="\d+"\/>/);
    again.send(`<a xmlns='${SM}' h='${h + 4}'/>`);
    alice.send(chat('bob@localhost/phone', 'm6'));
    await again.waitFor(/m6<\/body>/);
  });

  it('sends unacknowledged messages to offline storage when the session is not resumed in time', async () => {
    const carol = await smSession('carol', 'c', 'tablet');
    const alice = await connect();
    await alice.login('alice', 'a', 'desk2');
    for (const n of [1, 2]) alice.send(chat('carol@localhost', `c${n}`));
    await carol.c.waitFor(/c2<\/body>/);
    carol.c.close(); // never acknowledged
    alice.send(chat('carol@localhost', 'c3'));
    await tick(2600); // past the 2 s resume timeout
    expect(t.server.core.sessions.ofAccount('carol@localhost')).toHaveLength(0);

    const later = await connect();
    await later.login('carol', 'c', 'laptop');
    later.send('<presence/>');
    await later.waitFor(/c3<\/body>/);
    await tick();
    expect(bodies(later.text)).toEqual(['c1', 'c2', 'c3']);
    expect(later.text.match(/<delay xmlns="urn:xmpp:delay"/g)).toHaveLength(3);
  });

  it('refuses an unknown resumption id with item-not-found, after which binding works', async () => {
    const c = await connect();
    await c.authenticate('alice', 'a');
    c.send(`<resume xmlns='${SM}' previd='no-such-id' h='0'/>`);
    await c.waitFor(/<failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/failed>/);
    c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fresh</resource></bind></iq>`);
    await c.waitFor(/<jid>alice@localhost\/fresh<\/jid>/);
  });

  it('ends the stream when the client acknowledges more than was sent', async () => {
    const { c } = await smSession('alice', 'a', 'liar');
    c.send(`<a xmlns='${SM}' h='99'/>`);
    await c.waitFor(/<undefined-condition xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>.*<handled-count-too-high xmlns="urn:xmpp:sm:3" h="99" send-count="\d+"\/>/s);
    await c.waitClosed();
  });

  it('holds presence while the client is inactive and flushes it, latest only, when a message arrives', async () => {
    const bob = await connect();
    await bob.login('bob', 'b', 'pocket');
    const alice = await connect();
    await alice.login('alice', 'a', 'chatty');
    bob.send('<presence/>');
    await tick();
    bob.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    await tick();
    bob.text = '';
    for (const status of ['one', 'two', 'three']) alice.send(`<presence to='bob@localhost/pocket'><status>${status}</status></presence>`);
    alice.send("<message to='bob@localhost/pocket' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await tick(300);
    expect(bob.text).toBe('');
    alice.send(chat('bob@localhost/pocket', 'wake up'));
    await bob.waitFor(/wake up<\/body>/);
    expect(bob.text.match(/<status>/g)).toHaveLength(1);
    expect(bob.text).toContain('<status>three</status>');
    expect(bob.text.indexOf('composing')).toBeLessThan(bob.text.indexOf('wake up'));
    bob.text = '';
    alice.send(`<presence to='bob@localhost/pocket'><status>four</status></presence>`);
    await tick();
    expect(bob.text).toBe('');
    bob.send("<active xmlns='urn:xmpp:csi:0'/>");
    await bob.waitFor(/<status>four<\/status>/);
  });
});

describe('stream management with @xmpp/client', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { 'dana@localhost': 'pw', 'erin@localhost': 'pw', 'fay@localhost': 'pw', 'gus@localhost': 'pw' });
  });
  afterAll(() => t.stop());

  // The same over TCP and over WebSocket (RFC 7395): how the client's connection dies. Each
  // has its own pair of accounts: what one client left unacknowledged at its stop() goes to
  // offline storage, and would reach the next login of that account.
  const transports = [
    { name: 'TCP', phone: 'dana', friend: 'erin', service: () => `xmpp://127.0.0.1:${t.port}`, kill: (socket: any) => socket.destroy() },
    // ws's terminate(): the TCP connection under the WebSocket is destroyed, no close frame.
    { name: 'WebSocket', phone: 'fay', friend: 'gus', service: () => `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, kill: (socket: any) => socket.terminate() },
  ];

  it.each(transports)('resumes over $name after the connection is killed mid-conversation; every message arrives exactly once', async ({ phone, friend, service, kill }) => {
    const { client, xml } = await loadXmppJs();
    // @xmpp/websocket uses the global WebSocket, which Node 20 does not have: lend it ws's.
    (globalThis as any).WebSocket ??= (await import('ws')).WebSocket;
    const me = client({ service: service(), domain: 'localhost', username: phone, password: 'pw', resource: 'phone' });
    me.on('error', () => { /* the killed connection */ });
    const got: string[] = [];
    me.on('stanza', (el: XmlEl) => { if (el.is('message')) got.push(el.getChildText('body')); });
    let other: Awaited<ReturnType<typeof jsClient>> | undefined;
    try {
      await me.start();
      for (let i = 0; i < 50 && !me.streamManagement.enabled; i++) await tick(20);
      expect(me.streamManagement.enabled).toBe(true);
      await me.send(xml('presence'));
      const them = other = await jsClient({ port: t.port, username: friend, password: 'pw', resource: 'desk' });
      const say = (n: number) => them.send(them.xml('message', { to: `${phone}@localhost/phone`, type: 'chat' }, them.xml('body', {}, `n${n}`)));
      for (const n of [1, 2, 3]) await say(n);
      for (let i = 0; i < 50 && got.length < 3; i++) await tick(20);
      expect(got).toEqual(['n1', 'n2', 'n3']);

      const resumed = new Promise((r) => me.streamManagement.on('resumed', r));
      kill(me.socket.socket); // the network goes away without a goodbye
      for (const n of [4, 5, 6]) await say(n);
      await resumed; // xmpp.js reconnects by itself and resumes
      for (let i = 0; i < 100 && got.length < 6; i++) await tick(20);
      await tick(200);
      expect(got).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
    } finally {
      await other?.stop();
      await me.stop();
    }
  });
});
