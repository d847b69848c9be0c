// BOSH (XEP-0124, XEP-0206) end to end: the whole server, a plain node:http server routing
// /http-bind to the BoshService (standing in for the HTTP listener), a hand-written BOSH
// client, and the stanza library's BOSH transport chatting with an @xmpp/client TCP user.
import { createClient, type Agent } from 'stanza';
import type { ReceivedMessage } from 'stanza/protocol';
import { startTestServer, type TestServer } from '../helpers/server';
import { startBoshServer, BoshClient, type BoshTestServer } from '../helpers/bosh-server';
import { jsClient, type JsClient } from '../helpers/xmpp-js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StanzaUser {
  client: Agent;
  messages: ReceivedMessage[];
  waitForMessage(body: string, timeoutMs?: number): Promise<ReceivedMessage>;
  stop(): Promise<void>;
}

/** Logs in with stanza over BOSH only (SCRAM: the strongest mechanism offered) and sends initial presence. */
async function stanzaUser(url: string, jid: string, password: string, resource: string): Promise<StanzaUser> {
  const client = createClient({ jid, password, resource, transports: { bosh: url, websocket: false } });
  const messages: ReceivedMessage[] = [];
  const waiters: { body: string; resolve: (m: ReceivedMessage) => void }[] = [];
  client.on('message', (m) => {
    const i = waiters.findIndex((w) => w.body === m.body);
    if (i !== -1) return waiters.splice(i, 1)[0]!.resolve(m);
    messages.push(m);
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('stanza login timed out')), 10_000);
    client.once('session:started', () => {
      clearTimeout(t);
      resolve();
    });
    client.once('auth:failed', () => reject(new Error('stanza: authentication failed')));
    client.once('stream:error', (e) => reject(new Error('stanza: stream error ' + JSON.stringify(e))));
    client.connect();
  });
  client.sendPresence();
  return {
    client,
    messages,
    waitForMessage(body, timeoutMs = 8000) {
      const i = messages.findIndex((m) => m.body === body);
      if (i !== -1) return Promise.resolve(messages.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const w = { body, resolve: (m: ReceivedMessage) => { clearTimeout(t); resolve(m); } };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for "${body}"; got: ${JSON.stringify(messages.map((m) => m.body))}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop() {
      if (client.transport === undefined) return;
      // 'stream:end': the terminate body arrived ('disconnected' may come much later, after
      // stanza drains its own queues).
      await new Promise<void>((r) => {
        const t = setTimeout(r, 5000);
        const done = () => {
          clearTimeout(t);
          r();
        };
        client.once('stream:end', done);
        client.once('disconnected', done);
        void client.disconnect();
      });
    },
  };
}

describe('BOSH end to end', () => {
  let t: TestServer;
  let bosh: BoshTestServer;
  const tcpClients: JsClient[] = [];

  beforeAll(async () => {
    t = await startTestServer({}, { 'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob', 'carol@localhost': 'pw-carol' });
    bosh = await startBoshServer(t.server.core, {}, { secure: true, c2s: { resumeTimeoutMs: t.config.sessions.resumeTimeout * 1000 } });
  });

  afterAll(async () => {
    for (const c of tcpClients) await c.stop();
    await bosh.close();
    await t.stop();
  });

  it('a hand-written client logs in with SASL PLAIN, binds, and talks to the server', async () => {
    const c = new BoshClient(bosh.url);
    const created = await c.connect({ wait: 5 });
    expect(created.body!.attrs['xmpp:restartlogic']).toBe('true');
    const jid = await c.login('carol', 'pw-carol', 'handmade');
    expect(jid).toBe('carol@localhost/handmade');
    expect(t.server.core.sessions.ofAccount('carol@localhost').map((s) => s.jid.toString())).toEqual(['carol@localhost/handmade']);

    // A server IQ (XEP-0199 ping) and the roster, each in its own request.
    const pong = await c.exchange('<iq type="get" id="p1" to="localhost" xmlns="jabber:client"><ping xmlns="urn:xmpp:ping"/></iq>', (el) => el.attrs.id === 'p1');
    expect(pong.attrs).toMatchObject({ type: 'result', from: 'localhost', to: jid, xmlns: 'jabber:client' });
    const roster = await c.exchange('<iq type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>', (el) => el.attrs.id === 'r1');
    expect(roster.getChild('query', 'jabber:iq:roster')).toBeDefined();

    const bye = await c.send('<presence type="unavailable" xmlns="jabber:client"/>', { type: 'terminate' });
    expect(bye.body!.attrs.type).toBe('terminate');
    expect(bosh.service.connectionCount).toBe(0);
    expect(t.server.core.sessions.ofAccount('carol@localhost')).toEqual([]);
  });

  it('stanza over BOSH and @xmpp/client over TCP chat both ways', async () => {
    const alice = await stanzaUser(bosh.url, 'alice@localhost', 'pw-alice', 'web');
    expect(alice.client.jid).toBe('alice@localhost/web');
    expect(bosh.service.connectionCount).toBe(1);
    const bob = await jsClient({ port: t.port, username: 'bob', password: 'pw-bob', resource: 'tcp' });
    tcpClients.push(bob);
    const { xml } = bob;
    await bob.send(xml('presence'));

    // TCP -> BOSH
    await bob.send(xml('message', { to: 'alice@localhost/web', type: 'chat', id: 'b1' }, xml('body', {}, 'hello over TCP')));
    const got = await alice.waitForMessage('hello over TCP');
    expect(got.from).toBe('bob@localhost/tcp');

    // BOSH -> TCP, several in a row (they may share one request body)
    for (const n of [1, 2, 3]) alice.client.sendMessage({ to: 'bob@localhost/tcp', type: 'chat', body: `hi from BOSH ${n}` });
    for (const n of [1, 2, 3]) {
      const m = await bob.waitFor((el) => el.name === 'message' && el.getChildText('body') === `hi from BOSH ${n}`, 8000, `message ${n}`);
      expect(m.attrs.from).toBe('alice@localhost/web');
    }

    // An IQ round trip through the BOSH session.
    await alice.client.ping('localhost'); // rejects on an error or timeout

    await alice.stop();
    await sleep(100);
    expect(bosh.service.connectionCount).toBe(0);
    expect(t.server.core.sessions.ofAccount('alice@localhost')).toEqual([]);
  });

  it('messages sent while the BOSH user is away are delivered after it reconnects', async () => {
    const bob = tcpClients[0]!;
    const { xml } = bob;
    const first = await stanzaUser(bosh.url, 'alice@localhost', 'pw-alice', 'web');
    await first.stop();
    await sleep(100);
    expect(t.server.core.sessions.ofAccount('alice@localhost')).toEqual([]);

    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'off1' }, xml('body', {}, 'while you were away')));
    await sleep(200);

    const again = await stanzaUser(bosh.url, 'alice@localhost', 'pw-alice', 'web2');
    const m = await again.waitForMessage('while you were away');
    expect(m.from).toBe('bob@localhost/tcp');
    expect(m.delay?.timestamp).toBeInstanceOf(Date);
    await again.stop();
  });

  it('payloads in the terminate request reach their recipient before the session ends', async () => {
    const bob = tcpClients[0]!;
    const c = new BoshClient(bosh.url);
    await c.connect({ wait: 5 });
    await c.login('carol', 'pw-carol', 'leaving');
    const r = await c.send(
      '<message to="bob@localhost/tcp" type="chat" xmlns="jabber:client"><body>last words</body></message><presence type="unavailable" xmlns="jabber:client"/>',
      { type: 'terminate' },
    );
    expect(r.body!.attrs.type).toBe('terminate');
    const m = await bob.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'last words', 5000, 'last words');
    expect(m.attrs.from).toBe('carol@localhost/leaving');
    expect(t.server.core.sessions.ofAccount('carol@localhost')).toEqual([]);
  });

  it('stream management (XEP-0198): a session dropped by BOSH inactivity is resumed from a new BOSH session', async () => {
    const short = await startBoshServer(t.server.core, { inactivity: 1 }, { secure: true, c2s: { resumeTimeoutMs: 60_000 } });
    try {
      const bob = tcpClients[0]!;
      const { xml } = bob;
      const c1 = new BoshClient(short.url);
      await c1.connect({ wait: 5 });
      await c1.login('carol', 'pw-carol', 'phone');
      const enabled = await c1.exchange('<enable xmlns="urn:xmpp:sm:3" resume="true"/>', (el) => el.name === 'enabled');
      expect(enabled.attrs.resume).toBe('true');
      const previd = enabled.attrs.id!;

      // The client goes silent: the BOSH session ends, the XMPP session waits for a resumption.
      await sleep(1700);
      expect(short.service.connectionCount).toBe(0);
      expect(t.server.core.sessions.ofAccount('carol@localhost').map((s) => s.jid.toString())).toEqual(['carol@localhost/phone']);
      await bob.send(xml('message', { to: 'carol@localhost/phone', type: 'chat', id: 'sm1' }, xml('body', {}, 'are you there?')));
      await sleep(100);

      const c2 = new BoshClient(short.url);
      await c2.connect({ wait: 5 });
      const features = await c2.authenticate('carol', 'pw-carol');
      expect(features.getChild('sm', 'urn:xmpp:sm:3')).toBeDefined();
      const resumed = await c2.exchange(`<resume xmlns="urn:xmpp:sm:3" previd="${previd}" h="0"/>`, (el) => el.name === 'resumed' || el.name === 'failed');
      expect(resumed.name).toBe('resumed');
      const m = await c2.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'are you there?');
      expect(m.attrs.from).toBe('bob@localhost/tcp');

      // The resumed session sends through the new BOSH session, and ends with it.
      // (in the terminate request: its payload still reaches bob before the session ends)
      const bye = await c2.send('<message to="bob@localhost/tcp" type="chat" xmlns="jabber:client"><body>back again</body></message>', { type: 'terminate' });
      expect(bye.body!.attrs.type).toBe('terminate');
      const reply = await bob.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'back again', 5000, 'back again');
      expect(reply.attrs.from).toBe('carol@localhost/phone');
      await sleep(50);
      expect(t.server.core.sessions.ofAccount('carol@localhost')).toEqual([]);
    } finally {
      await short.close();
    }
  });

  it('a second login with the same resource ends the BOSH session with a conflict stream error', async () => {
    const c = new BoshClient(bosh.url);
    await c.connect({ wait: 5 });
    await c.login('carol', 'pw-carol', 'dup');
    const held = c.send();
    await sleep(50);
    const tcp = await jsClient({ port: t.port, username: 'carol', password: 'pw-carol', resource: 'dup' });
    tcpClients.push(tcp);
    const r = await held;
    expect(r.body!.attrs).toMatchObject({ type: 'terminate', condition: 'remote-stream-error' });
    expect(r.body!.getChild('error', 'http://etherx.jabber.org/streams')!.getChild('conflict')).toBeDefined();
  });
});

describe('BOSH on the server\'s own HTTP listener', () => {
  it('is mounted at /http-bind, advertised in host-meta, and chats with a TCP user', async () => {
    const t = await startTestServer({}, { 'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob' });
    try {
      const meta = await (await fetch(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta.json`)).json() as { links: { rel: string; href: string }[] };
      expect(meta.links).toContainEqual({ rel: 'urn:xmpp:alt-connections:xbosh', href: `http://127.0.0.1:${t.httpPort}/http-bind` });
      const alice = await stanzaUser(`http://127.0.0.1:${t.httpPort}/http-bind`, 'alice@localhost', 'pw-alice', 'web');
      const bob = await jsClient({ port: t.port, username: 'bob', password: 'pw-bob', resource: 'desk' });
      await bob.send(bob.xml('message', { to: 'alice@localhost/web', type: 'chat' }, bob.xml('body', {}, 'over the listener')));
      await alice.waitForMessage('over the listener');
      expect(t.server.connectionCount).toBeGreaterThanOrEqual(2);
      await alice.stop();
      await bob.stop();
    } finally {
      await t.stop();
    }
  });
});
