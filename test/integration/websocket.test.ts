// XMPP over WebSocket (RFC 7395) on the web listener: real clients (@xmpp/client) chatting
// with TCP clients, and a bare WebSocket for framing, errors, origins, proxies and redirects.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type JsClient, type XmlEl } from '../helpers/xmpp-js';
import { WsClient, NS_FRAMING } from '../helpers/ws-client';
import { adminRequest } from '../../src/admin/admin-client';
import { adminSocketPath } from '../../src/server';

const wsUrl = (t: TestServer) => `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`;
const isPresence = (from: string, type?: string) => (el: XmlEl) =>
  el.name === 'presence' && String(el.attrs.from).startsWith(from) && el.attrs.type === type;
const isChat = (body: string) => (el: XmlEl) => el.name === 'message' && el.getChildText('body') === body;
const STREAM_ERROR = (condition: string) =>
  new RegExp(`^<stream:error xmlns:stream="http://etherx.jabber.org/streams"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`);
const CLOSE = new RegExp(`^<close xmlns="${NS_FRAMING}"/>$`);

const USERS = {
  'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob', 'carol@localhost': 'pw-carol', 'dave@localhost': 'pw-dave',
  'erin@localhost': 'pw-erin',
};

describe('XMPP over WebSocket with real clients', () => {
  let t: TestServer;
  const clients: JsClient[] = [];
  const overWs = async (username: string, resource: string, service?: string) => {
    const sent: string[] = [];
    const c = await jsClient({ service: service ?? wsUrl(t), username, password: 'pw-' + username, resource, onSend: (el) => sent.push(el.toString()) });
    clients.push(c);
    return Object.assign(c, { sent });
  };
  const overTcp = async (username: string, resource: string) => {
    const c = await jsClient({ port: t.port, username, password: 'pw-' + username, resource });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startTestServer({}, USERS);
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('logs in with SCRAM over ws:// and chats both ways with a TCP client', async () => {
    const alice = await overWs('alice', 'web');
    expect(alice.jid).toBe('alice@localhost/web');
    expect(alice.sent.find((s) => s.startsWith('<auth'))).toContain('mechanism="SCRAM-SHA-1"');
    const bob = await overTcp('bob', 'desk');
    const { xml } = alice;

    await alice.send(xml('message', { to: 'bob@localhost/desk', type: 'chat' }, xml('body', {}, 'hello from the browser')));
    const atBob = await bob.waitFor(isChat('hello from the browser'), 5000, 'message at bob');
    expect(atBob.attrs.from).toBe('alice@localhost/web');

    await bob.send(xml('message', { to: 'alice@localhost/web', type: 'chat' }, xml('body', {}, 'hello from TCP')));
    const atAlice = await alice.waitFor(isChat('hello from TCP'), 5000, 'message at alice');
    expect(atAlice.attrs.from).toBe('bob@localhost/desk');

    const pong = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(pong.attrs.type).toBe('result');
  });

  it('subscribes and exchanges presence between a WebSocket and a TCP client', async () => {
    const carol = await overWs('carol', 'web');
    const dave = await overTcp('dave', 'desk');
    const { xml } = carol;
    await carol.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await dave.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await dave.send(xml('presence'));
    await carol.send(xml('presence'));

    await carol.send(xml('presence', { to: 'dave@localhost', type: 'subscribe' }));
    await dave.waitFor(isPresence('carol@localhost', 'subscribe'), 5000, 'subscription request');
    await dave.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
    await carol.waitFor(isPresence('dave@localhost', 'subscribed'), 5000, 'subscribed');
    const available = await carol.waitFor(isPresence('dave@localhost/desk', undefined), 5000, "dave's presence over WebSocket");
    expect(available.attrs.to).toMatch(/^carol@localhost/);

    await dave.send(xml('presence', {}, xml('show', {}, 'away')));
    const away = await carol.waitFor((el) => isPresence('dave@localhost/desk')(el) && el.getChildText('show') === 'away', 5000, 'away');
    expect(away.attrs.from).toBe('dave@localhost/desk');
    await dave.stop();
    await carol.waitFor(isPresence('dave@localhost/desk', 'unavailable'), 5000, 'unavailable');
  });

  it('delivers messages stored while offline when the user logs in over WebSocket', async () => {
    const bob = await overTcp('bob', 'offline-sender');
    const { xml } = bob;
    await bob.send(xml('message', { to: 'erin@localhost', type: 'chat' }, xml('body', {}, 'while you were away')));
    await new Promise((r) => setTimeout(r, 200));
    const erin = await overWs('erin', 'web');
    await erin.send(xml('presence'));
    const msg = await erin.waitFor(isChat('while you were away'), 5000, 'offline message');
    expect(msg.attrs.from).toBe('bob@localhost/offline-sender');
    expect(msg.getChild('delay', 'urn:xmpp:delay')).toBeDefined();
  });

  it('logs in over wss:// on the HTTPS port', async () => {
    const alice = await overWs('alice', 'secure-web', `wss://127.0.0.1:${t.httpsPort}/xmpp-websocket`);
    expect(alice.jid).toBe('alice@localhost/secure-web');
    expect(alice.sent.find((s) => s.startsWith('<auth'))).toContain('mechanism="SCRAM-SHA-1"');
    const session = t.server.core.sessions.ofAccount('alice@localhost').find((s) => s.jid.resource === 'secure-web');
    expect(session?.remoteAddress).toBe('127.0.0.1');
  });

  it('offers SCRAM-PLUS channel binding over wss:// straight to the server', async () => {
    const c = await WsClient.connect(`wss://127.0.0.1:${t.httpsPort}/xmpp-websocket`);
    c.open();
    const features = await c.waitFor(/<\/stream:features>/);
    expect(features).toContain('<mechanism>SCRAM-SHA-256-PLUS</mechanism>');
    expect(features).toContain('<channel-binding type="tls-server-end-point"/>');
    const plain = await WsClient.connect(wsUrl(t));
    plain.open();
    expect(await plain.waitFor(/<\/stream:features>/)).not.toContain('-PLUS');
    for (const client of [c, plain]) {
      client.send(`<close xmlns='${NS_FRAMING}'/>`);
      await client.waitClosed();
    }
  });

  it('counts WebSocket connections and lists the web ports in xmppd status', async () => {
    // Let connections closed by earlier tests go first.
    let before = -1;
    while (before !== t.server.connectionCount) {
      before = t.server.connectionCount;
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await WsClient.connect(wsUrl(t));
    await c.login('bob', 'pw-bob', 'counted');
    expect(t.server.connectionCount).toBe(before + 1);
    const status = await adminRequest(adminSocketPath(t.config), { command: 'status' });
    expect(status.ok).toBe(true);
    expect((status as { result: { ports: Record<string, number> } }).result.ports).toMatchObject({
      c2s: t.port, c2sTls: t.tlsPort, http: t.httpPort, https: t.httpsPort,
    });
    c.send(`<close xmlns='${NS_FRAMING}'/>`);
    await c.waitClosed();
    for (let i = 0; i < 100 && t.server.connectionCount > before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(t.server.connectionCount).toBe(before);
  });
});

describe('XMPP over WebSocket framing (RFC 7395)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { maxStanzaBytes: 10000 } }, USERS);
  });
  afterAll(() => t.stop());

  it('opens with <open/>, sends namespaced features and stanzas, restarts after SASL and closes with <close/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    expect(c.protocol).toBe('xmpp');
    c.open();
    await c.waitFor(/<\/stream:features>/);
    expect(c.messages[0]).toMatch(new RegExp(`^<open xmlns="${NS_FRAMING}" from="localhost" id="[^"]+" version="1.0" xml:lang="en"/>$`));
    expect(c.messages[1]).toMatch(/^<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">/);
    expect(c.messages[1]).not.toContain('starttls');
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0pw-alice').toString('base64')}</auth>`);
    await c.waitFor(/^<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>$/);
    c.messages.length = 0;
    c.open();
    await c.waitFor(/<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
    expect(c.messages[0]).toMatch(/^<open /);
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>framed</resource></bind></iq>");
    expect(await c.waitFor(/id="b1"/)).toMatch(/^<iq xmlns="jabber:client" type="result" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>alice@localhost\/framed<\/jid><\/bind><\/iq>$/);
    c.send('  '); // whitespace is ignored
    c.send(`<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    expect(await c.waitFor(/id="p1"/)).toMatch(/^<iq xmlns="jabber:client" type="result" id="p1"/);
    c.send(`<close xmlns='${NS_FRAMING}'/>`);
    await c.waitFor(CLOSE);
    expect((await c.waitClosed()).code).toBe(1000);
  });

  it('closes a connection that does not offer the xmpp subprotocol (RFC 7395 §3.2)', async () => {
    const c = await WsClient.connect(wsUrl(t), { protocols: [] });
    expect(c.protocol).toBe('');
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1002);
    expect(closed.reason).toContain("'xmpp'");
    expect(c.messages).toEqual([]);
  });

  it('answers a malformed message with <not-well-formed/> and <close/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.open();
    await c.waitFor(/<\/stream:features>/);
    c.send("<message xmlns='jabber:client'><body>oops</message>");
    await c.waitFor(STREAM_ERROR('not-well-formed'));
    await c.waitFor(CLOSE);
    await c.waitClosed();
  });

  it('answers two elements in one message with <not-well-formed/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.open();
    await c.waitFor(/<\/stream:features>/);
    c.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
    await c.waitFor(STREAM_ERROR('not-well-formed'));
    await c.waitClosed();
  });

  it('answers a message over limits.maxStanzaBytes with <policy-violation/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.open();
    await c.waitFor(/<\/stream:features>/);
    c.send(`<message xmlns='jabber:client'><body>${'x'.repeat(12000)}</body></message>`);
    await c.waitFor(STREAM_ERROR('policy-violation'));
    await c.waitFor(CLOSE);
    await c.waitClosed();
  });

  it('cuts off a message far beyond the limit at the WebSocket level (1009)', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.open();
    await c.waitFor(/<\/stream:features>/);
    c.send(`<message xmlns='jabber:client'><body>${'x'.repeat(100_000)}</body></message>`);
    expect((await c.waitClosed()).code).toBe(1009);
  });

  it('opens the stream to report a stanza sent before <open/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.send("<message xmlns='jabber:client' to='bob@localhost'><body>too early</body></message>");
    await c.waitFor(CLOSE);
    expect(c.messages[0]).toMatch(new RegExp(`^<open xmlns="${NS_FRAMING}" from="localhost"`));
    expect(c.messages[1]).toMatch(STREAM_ERROR('invalid-namespace'));
    expect(c.messages[1]).toContain('RFC 7395');
    expect(c.messages[2]).toMatch(CLOSE);
    await c.waitClosed();
  });

  it('refuses binary messages and an <open/> in the wrong namespace', async () => {
    const bin = await WsClient.connect(wsUrl(t));
    bin.send(Buffer.from(`<open xmlns='${NS_FRAMING}' to='localhost' version='1.0'/>`), true);
    await bin.waitFor(STREAM_ERROR('bad-format'));
    await bin.waitClosed();
    const wrong = await WsClient.connect(wsUrl(t));
    wrong.send("<open xmlns='jabber:client' to='localhost' version='1.0'/>");
    await wrong.waitFor(STREAM_ERROR('invalid-namespace'));
    await wrong.waitClosed();
  });

  it('checks the <open/> attributes as a stream header: an unknown domain is <host-unknown/>', async () => {
    const c = await WsClient.connect(wsUrl(t));
    c.open('elsewhere.example');
    await c.waitFor(STREAM_ERROR('host-unknown'));
    await c.waitFor(CLOSE);
    await c.waitClosed();
  });
});

describe('WebSocket: origins, proxies, redirects and shutdown', () => {
  it('refuses a disallowed Origin with 403 and still serves allowed ones, clients without Origin, and TCP', async () => {
    const t = await startTestServer({ http: { allowedOrigins: ['https://chat.example.org'] } }, USERS);
    try {
      await expect(WsClient.connect(wsUrl(t), { origin: 'https://evil.example' })).rejects.toMatchObject({ status: 403 });
      const ok = await WsClient.connect(wsUrl(t), { origin: 'https://chat.example.org' });
      expect(await ok.login('alice', 'pw-alice', 'allowed')).toBe('alice@localhost/allowed');
      const noOrigin = await WsClient.connect(wsUrl(t));
      expect(await noOrigin.login('bob', 'pw-bob', 'native')).toBe('bob@localhost/native');
      const tcp = await jsClient({ port: t.port, username: 'carol', password: 'pw-carol', resource: 'tcp' });
      expect(tcp.jid).toBe('carol@localhost/tcp');
      await tcp.stop();
      ok.close();
      noOrigin.close();
    } finally {
      await t.stop();
    }
  });

  it('takes the client address from X-Forwarded-For only when the peer is a trusted proxy', async () => {
    const trusting = await startTestServer({ http: { trustedProxies: ['127.0.0.1'] } }, USERS);
    const untrusting = await startTestServer({}, USERS);
    try {
      const viaProxy = await WsClient.connect(wsUrl(trusting), { headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9', 'X-Forwarded-Proto': 'https' } });
      await viaProxy.login('alice', 'pw-alice', 'proxied');
      const sessions = await adminRequest(adminSocketPath(trusting.config), { command: 'sessions' });
      expect((sessions as { result: { jid: string; address: string }[] }).result).toContainEqual(
        expect.objectContaining({ jid: 'alice@localhost/proxied', address: '203.0.113.9' }));

      const spoofing = await WsClient.connect(wsUrl(untrusting), { headers: { 'X-Forwarded-For': '203.0.113.9' } });
      await spoofing.login('alice', 'pw-alice', 'spoofed');
      const session = untrusting.server.core.sessions.ofAccount('alice@localhost').find((s) => s.jid.resource === 'spoofed');
      expect(session?.remoteAddress).toBe('127.0.0.1');
      viaProxy.close();
      spoofing.close();
    } finally {
      await trusting.stop();
      await untrusting.stop();
    }
  });

  it('refuses logins over plain ws:// that a trusted proxy says came from a remote client over http, unless allowInsecure', async () => {
    const strict = await startTestServer({ http: { trustedProxies: ['127.0.0.0/8'] } }, USERS);
    const lax = await startTestServer({ http: { trustedProxies: ['127.0.0.0/8'], allowInsecure: true } }, USERS);
    try {
      const headers = { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'http' };
      const refused = await WsClient.connect(wsUrl(strict), { headers });
      refused.open();
      const error = await refused.waitFor(STREAM_ERROR('policy-violation'));
      expect(error).toContain('wss://');
      await refused.waitFor(CLOSE);
      await refused.waitClosed();

      const allowed = await WsClient.connect(wsUrl(lax), { headers });
      expect(await allowed.login('alice', 'pw-alice', 'plain')).toBe('alice@localhost/plain');
      allowed.close();
    } finally {
      await strict.stop();
      await lax.stop();
    }
  });

  it('sends every client to websocketSeeOtherUri with <close see-other-uri/> (RFC 7395 §3.6.1)', async () => {
    const t = await startTestServer({ http: { websocketSeeOtherUri: 'wss://other.example:5443/xmpp-websocket' } });
    try {
      const c = await WsClient.connect(wsUrl(t));
      c.open();
      const close = await c.waitFor(/^<close /);
      expect(close).toBe(`<close xmlns="${NS_FRAMING}" see-other-uri="wss://other.example:5443/xmpp-websocket"/>`);
      await c.waitClosed();
      expect(c.messages).toHaveLength(1);
    } finally {
      await t.stop();
    }
  });

  it('shares the per-address connection limit and the auth timeout with the TCP listeners', async () => {
    const t = await startTestServer({ limits: { maxConnectionsPerAddress: 2, authTimeout: 1 } }, USERS);
    try {
      const first = await WsClient.connect(wsUrl(t));
      const tcp = await jsClient({ port: t.port, username: 'bob', password: 'pw-bob', resource: 'tcp' });
      const third = await WsClient.connect(wsUrl(t));
      third.open();
      expect(await third.waitFor(STREAM_ERROR('policy-violation'))).toContain('Too many connections from your address');
      await third.waitClosed();
      // The first never logs in: <connection-timeout/> after limits.authTimeout.
      first.open();
      await first.waitFor(STREAM_ERROR('connection-timeout'), 4000);
      await first.waitFor(CLOSE);
      await first.waitClosed();
      await tcp.stop();
    } finally {
      await t.stop();
    }
  });

  it('sends <system-shutdown/> and <close/> to WebSocket clients when the server stops', async () => {
    const t = await startTestServer({}, USERS);
    const c = await WsClient.connect(wsUrl(t));
    await c.login('alice', 'pw-alice', 'leaving');
    const js = await jsClient({ service: wsUrl(t), username: 'bob', password: 'pw-bob', resource: 'js' });
    const jsError = new Promise<string>((resolve) => js.xmpp.on('element', (el: XmlEl) => {
      if (el.name === 'stream:error') resolve(el.toString());
    }));
    await t.stop();
    await c.waitFor(STREAM_ERROR('system-shutdown'));
    await c.waitFor(CLOSE);
    await c.waitClosed();
    expect(await jsError).toContain('system-shutdown');
    await js.stop();
  });
});
