import { createHash } from 'node:crypto';
import { Core } from '../../src/core';
import { silentLogger } from '../../src/log';
import type { Element } from '../../src/xml/element';
import type { BoshOptions, BoshTrackedSession } from '../../src/net/bosh/service';
import { StreamError } from '../../src/errors';
import { BoshClient, startBoshServer, type BoshTestServer, type BoshReply } from '../helpers/bosh-server';
import type { C2sOptions } from '../../src/stream/c2s-session';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const EMPTY = '<body xmlns="http://jabber.org/protocol/httpbind"/>';

let core: Core;
const servers: BoshTestServer[] = [];

beforeAll(async () => {
  core = await Core.create({ domains: ['localhost'], database: ':memory:', log: silentLogger(), modules: [] });
  await core.createUser('alice@localhost', 'secret');
});

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

afterAll(async () => {
  await core.close();
});

async function server(opts: BoshOptions = {}, c2s: Partial<C2sOptions> = {}, secure = true): Promise<BoshTestServer> {
  const s = await startBoshServer(core, opts, { c2s, secure });
  servers.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pre-authentication IQ: the server answers it (service-unavailable) after a few ticks. */
function iq(id: string, ns = ' xmlns="jabber:client"'): string {
  return `<iq type="get" id="${id}"${ns}><query xmlns="urn:example:nothing"/></iq>`;
}

function iqIds(...replies: BoshReply[]): string[] {
  return replies.flatMap((r) => r.body?.elements ?? []).filter((e: Element) => e.name === 'iq').map((e) => e.attrs.id ?? '');
}

function condition(r: BoshReply): string | undefined {
  return r.body?.attrs.type === 'terminate' ? r.body.attrs.condition ?? '(none)' : undefined;
}

describe('BOSH session creation (XEP-0124 §7, XEP-0206 §3-4)', () => {
  test('the response has the session attributes and the first stream features', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    const r = await c.connect({ wait: 300, hold: 5 });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/xml; charset=utf-8');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const b = r.body!;
    expect(b.attrs).toMatchObject({
      wait: '60', hold: '1', requests: '2', inactivity: '60', polling: '2', maxpause: '120', ver: '1.11',
      from: 'localhost', secure: 'true', 'xmpp:version': '1.0', 'xmpp:restartlogic': 'true', 'xmlns:xmpp': 'urn:xmpp:xbosh',
    });
    expect(b.attrs.sid).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(b.attrs.authid).toMatch(/^[0-9a-f]{16}$/);
    const features = b.getChild('features', NS_STREAM)!;
    expect(features).toBeDefined();
    const mechs = features.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl')!.getChildren('mechanism').map((m) => m.text());
    expect(mechs).toEqual(expect.arrayContaining(['SCRAM-SHA-256', 'PLAIN']));
    // No channel binding over BOSH (TLS ends at the HTTP layer), so no -PLUS mechanisms.
    expect(mechs.some((m) => m.endsWith('-PLUS'))).toBe(false);
    expect(s.service.connectionCount).toBe(1);

    const other = await new BoshClient(s.url).connect();
    expect(other.body!.attrs.sid).not.toBe(b.attrs.sid);
    expect(s.service.connectionCount).toBe(2);
  });

  test('a shorter wait, hold 0 and an older ver are honoured; polling sessions get more inactivity', async () => {
    const s = await server();
    const r = await new BoshClient(s.url).connect({ wait: 10, hold: 0, ver: '1.6' });
    expect(r.body!.attrs).toMatchObject({ wait: '10', hold: '0', requests: '1', inactivity: '62', ver: '1.6' });
  });

  test('a domain the server does not host is host-unknown', async () => {
    const s = await server();
    const r = await new BoshClient(s.url).connect({ to: 'example.org' });
    expect(condition(r)).toBe('host-unknown');
    expect(s.service.connectionCount).toBe(0);
  });

  test('without a secure connection (and TLS required), no SASL mechanism is offered', async () => {
    const s = await server({}, {}, false);
    const r = await new BoshClient(s.url).connect();
    const features = r.body!.getChild('features', NS_STREAM)!;
    expect(features.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl')).toBeUndefined();
    expect(features.getChild('starttls')).toBeUndefined();
  });

  test('a connection registry (admit) tracks sessions and may refuse one', async () => {
    const tracked = new Set<BoshTrackedSession>();
    const admit = (session: BoshTrackedSession) => {
      tracked.add(session);
      if (tracked.size > 1) session.close(new StreamError('policy-violation', 'Too many connections from your address'));
      return () => tracked.delete(session);
    };
    const s = await server({ admit });
    const a = new BoshClient(s.url);
    await a.connect();
    expect(tracked.size).toBe(1);
    const b = new BoshClient(s.url);
    expect((await b.connect()).body!.attrs.sid).toBeDefined();
    const r = await b.send();
    expect(condition(r)).toBe('remote-stream-error');
    expect(r.body!.getChild('error', NS_STREAM)!.getChild('policy-violation')).toBeDefined();
    expect(tracked.size).toBe(1);
    await a.send('', { type: 'terminate' });
    expect(tracked.size).toBe(0);
  });

  test('the session limit per address', async () => {
    const s = await server({ maxSessionsPerAddress: 1 });
    expect((await new BoshClient(s.url).connect()).body!.attrs.sid).toBeDefined();
    expect(condition(await new BoshClient(s.url).connect())).toBe('policy-violation');
    expect(s.service.sessionsFrom('127.0.0.1')).toBe(1);
  });
});

describe('BOSH hold and wait (XEP-0124 §8)', () => {
  test('an empty request is held until wait runs out, then answered with an empty body', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 1 });
    const t0 = Date.now();
    const r = await c.send();
    const took = Date.now() - t0;
    expect(r.text).toBe(EMPTY);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
  });

  test('a held request is answered at once when a newer one arrives; data goes to the one held then', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const first = c.send();
    await sleep(100);
    const t0 = Date.now();
    const second = c.send(iq('q1', ''));
    const r1 = await first;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r1.text).toBe(EMPTY);
    const r2 = await second;
    expect(Date.now() - t0).toBeLessThan(1000);
    // The stanza had no namespace (taken as jabber:client); the answer carries jabber:client.
    const reply = r2.body!.getChild('iq')!;
    expect(reply.attrs).toMatchObject({ id: 'q1', type: 'error', xmlns: 'jabber:client' });
  });

  test('a polling session (hold 0) is answered at once; polling faster than allowed is a policy violation', async () => {
    const s = await server({ polling: 0.3 });
    const c = new BoshClient(s.url);
    await c.connect({ hold: 0 });
    const t0 = Date.now();
    expect((await c.send()).text).toBe(EMPTY);
    expect(Date.now() - t0).toBeLessThan(500);
    await sleep(400);
    expect((await c.send()).text).toBe(EMPTY);
    expect(condition(await c.send())).toBe('policy-violation');
    expect(s.service.connectionCount).toBe(0);
  });
});

describe('BOSH request ids (XEP-0124 §14)', () => {
  test('requests arriving out of order are processed in rid order', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 2 });
    const ridA = c.rid++;
    const ridB = c.rid++;
    const pb = c.post(c.body({}, iq('b'), ridB));
    await sleep(100);
    const pa = c.post(c.body({}, iq('a'), ridA));
    const [ra, rb] = await Promise.all([pa, pb]);
    expect(iqIds(ra, rb)).toEqual(['a', 'b']);
  });

  test('a rid beyond the window is item-not-found and ends the session', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect();
    const r = await c.post(c.body({}, '', c.rid + 2));
    expect(r.status).toBe(200);
    expect(condition(r)).toBe('item-not-found');
    expect(s.service.connectionCount).toBe(0);
    expect(condition(await c.send())).toBe('item-not-found');
  });

  test('a resent rid gets the same answer again', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 1 });
    const data = c.body({}, iq('r1'));
    const first = await c.post(data);
    expect(iqIds(first)).toEqual(['r1']);
    const again = await c.post(data);
    expect(again.text).toBe(first.text);
    // The session goes on.
    expect(iqIds(await c.send(iq('r2')))).toEqual(['r2']);
  });

  test('resending a rid that is still held: the first copy gets a recoverable error, the second the answer', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 1 });
    const data = c.body();
    const first = c.post(data);
    await sleep(100);
    const second = c.post(data);
    const r1 = await first;
    expect(r1.body!.attrs.type).toBe('error');
    expect((await second).text).toBe(EMPTY);
    expect(iqIds(await c.send(iq('next')))).toEqual(['next']);
  });

  test('a rid whose answer is no longer kept is item-not-found', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 1 });
    const old = c.body({}, iq('o1'));
    await c.post(old);
    for (const id of ['o2', 'o3', 'o4']) await c.send(iq(id));
    expect(condition(await c.post(old))).toBe('item-not-found');
    expect(s.service.connectionCount).toBe(0);
  });

  test('more simultaneous requests than allowed is a policy violation', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const base = c.rid;
    c.rid += 3;
    const held = c.post(c.body({}, '', base));
    await sleep(50);
    const early = c.post(c.body({}, iq('x'), base + 2));
    await sleep(50);
    const r = await c.post(c.body({}, iq('y'), base + 1));
    expect(condition(r)).toBe('policy-violation');
    expect(condition(await held)).toBe('policy-violation');
    expect(condition(await early)).toBe('policy-violation');
  });

  test('an empty request while another is held, sooner than the polling interval, is a policy violation', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const held = c.send();
    await sleep(50);
    expect(condition(await c.send())).toBe('policy-violation');
    expect(condition(await held)).toBe('policy-violation');
  });

  test('key sequencing (XEP-0124 §15): the right keys pass, a wrong one ends the session', async () => {
    const s = await server();
    const keys: string[] = [];
    let k = 'seed-' + Math.random();
    for (let i = 0; i < 4; i++) keys.push((k = createHash('sha1').update(k).digest('hex')));
    // keys[3] = K(4), the first newkey; then K(3), K(2), ...
    const c = new BoshClient(s.url);
    await c.connect({ wait: 1, newkey: keys[3] });
    expect(iqIds(await c.send(iq('k1'), { key: keys[2] }))).toEqual(['k1']);
    expect(iqIds(await c.send(iq('k2'), { key: keys[1]!.toUpperCase() }))).toEqual(['k2']);
    expect(condition(await c.send(iq('k3'), { key: keys[1] }))).toBe('item-not-found');
  });
});

describe('BOSH pause, inactivity and terminate (XEP-0124 §12-13)', () => {
  test('inactivity ends the session without telling the client; the bound session goes away', async () => {
    const s = await server({ inactivity: 1 });
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const jid = await c.login('alice', 'secret', 'idle');
    expect(jid).toBe('alice@localhost/idle');
    expect(core.sessions.ofAccount('alice@localhost').length).toBe(1);
    await sleep(1700);
    expect(s.service.connectionCount).toBe(0);
    expect(core.sessions.ofAccount('alice@localhost').length).toBe(0);
    expect(condition(await c.send())).toBe('item-not-found');
  });

  test('a held request keeps the session alive past the inactivity period', async () => {
    const s = await server({ inactivity: 1 });
    const c = new BoshClient(s.url);
    await c.connect({ wait: 2 });
    expect((await c.send()).text).toBe(EMPTY);
    expect(iqIds(await c.send(iq('alive')))).toEqual(['alive']);
  });

  test('pause answers all held requests and allows a longer silence (capped at maxpause)', async () => {
    const s = await server({ inactivity: 1, maxPause: 3 });
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const held = c.send();
    await sleep(50);
    const t0 = Date.now();
    const r = await c.send('', { pause: 60 });
    expect(r.text).toBe(EMPTY);
    expect((await held).text).toBe(EMPTY);
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleep(2000);
    expect(s.service.connectionCount).toBe(1);
    expect(iqIds(await c.send(iq('back')))).toEqual(['back']);
    // The pause is over: the normal inactivity applies again.
    await sleep(1700);
    expect(s.service.connectionCount).toBe(0);
  });

  test('terminate: the oldest open request gets the terminate body, the others empty ones', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const held = c.send();
    await sleep(50);
    const r = await c.send('', { type: 'terminate' });
    expect(r.text).toBe(EMPTY);
    expect(condition(await held)).toBe('(none)');
    expect(s.service.connectionCount).toBe(0);
    // The sid is kept for a while with the final answer.
    expect(condition(await c.send())).toBe('(none)');
  });

  test('terminate with nothing held is answered with the terminate body', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect();
    const r = await c.send('<presence type="unavailable" xmlns="jabber:client"/>', { type: 'terminate' });
    expect(condition(r)).toBe('(none)');
    expect(s.service.connectionCount).toBe(0);
  });

  test('a stream error ends the session as remote-stream-error with the <stream:error/>', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    // A message before authentication: the session ends the stream with <not-authorized/>.
    const r = await c.send('<message xmlns="jabber:client" to="bob@localhost"><body>hi</body></message>');
    expect(condition(r)).toBe('remote-stream-error');
    const err = r.body!.getChild('error', NS_STREAM)!;
    expect(err.getChild('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).toBeDefined();
    expect(s.service.connectionCount).toBe(0);
    // A resend (or any request) for that sid gets the same final answer.
    expect(condition(await c.send())).toBe('remote-stream-error');
  });

  test('the session timers run: authentication taking too long is a connection-timeout', async () => {
    const s = await server({}, { authTimeoutMs: 300 });
    const c = new BoshClient(s.url);
    await c.connect({ wait: 5 });
    const t0 = Date.now();
    const r = await c.send();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(condition(r)).toBe('remote-stream-error');
    expect(r.body!.getChild('error', NS_STREAM)!.getChild('connection-timeout')).toBeDefined();
  });

  test('SASL PLAIN, restart and bind over BOSH', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 2 });
    expect(await c.login('alice', 'secret', 'r1')).toBe('alice@localhost/r1');
    expect(s.service.connectionCount).toBe(1);
    const r = await c.send('', { type: 'terminate' });
    expect(condition(r)).toBe('(none)');
    await sleep(10);
    expect(core.sessions.ofAccount('alice@localhost').length).toBe(0);
  });
});
