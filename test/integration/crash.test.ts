// Durability: the real server process (node bin/xmppd start) is SIGKILLed at random moments
// while a client streams messages to an offline user; every message the server acknowledged
// with XEP-0198 <a h=…/> (and did not bounce) must be delivered after restart, and SQLite must
// pass PRAGMA integrity_check. Also: SIGTERM stores what waits for hibernating sessions.
//
// XMPPD_CRASH_KILLS sets the number of kills (default 3 in CI).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';

const BIN = resolve(__dirname, '../../bin/xmppd');
const KILLS = Number(process.env.XMPPD_CRASH_KILLS) > 0 ? Number(process.env.XMPPD_CRASH_KILLS) : 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function run(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((res, rej) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, _o, stderr) => (err ? rej(new Error(stderr || String(err))) : res()));
  });
}

describe('crash durability (SIGKILL) and graceful shutdown', () => {
  jest.setTimeout(60_000 + KILLS * 15_000);
  let dir: string;
  let env: Record<string, string>;
  let port: number;
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    dir = tempDir('xmppd-crash-');
    port = await freePort();
    const config = join(dir, 'xmppd.yaml');
    writeFileSync(config, [
      'domains: [localhost]',
      'dataDir: ./data',
      'log: { level: warn, format: json }',
      `c2s: { host: 127.0.0.1, port: ${port}, tlsPort: null, requireTls: false }`,
      'http: { port: null, tlsPort: null }',
      'auth: { failureDelayMs: 0 }',
      'sessions: { resumeTimeout: 300 }',
      'modules: { offline: { maxMessages: 1000000 } }',
      '',
    ].join('\n'));
    env = { XMPPD_CONFIG: config };
    await run(['user', 'add', 'alice@localhost', '--password', 'wonderland'], env);
    await run(['user', 'add', 'bob@localhost', '--password', 'builder'], env);
  });
  afterAll(() => {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    for (let i = 0; i < 200; i++) {
      try {
        const probe = await RawClient.connect(port);
        probe.close();
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error('server did not start');
  }

  async function login(user: string, password: string, resource: string): Promise<RawClient> {
    const c = await RawClient.connect(port);
    await c.login(user, password, resource);
    return c;
  }

  function kill(signal: NodeJS.Signals): Promise<number | null> {
    const s = server!;
    server = undefined;
    const exited = new Promise<number | null>((r) => s.once('exit', (code) => r(code)));
    s.kill(signal);
    return exited;
  }

  it(`delivers every acknowledged offline message after ${KILLS} SIGKILLs, and the database stays intact`, async () => {
    const acknowledged: string[] = [];
    let n = 0;
    for (let k = 0; k < KILLS; k++) {
      await start();
      const alice = await login('alice', 'wonderland', `w${k}`);
      alice.send("<enable xmlns='urn:xmpp:sm:3'/>");
      await alice.waitFor(/<enabled /);
      const sent: string[] = [];
      const killAt = Date.now() + 50 + Math.floor(Math.random() * 400);
      // Stream messages to offline bob, asking for an ack after each, until the kill.
      while (Date.now() < killAt) {
        const body = `m${++n}`;
        sent.push(body);
        alice.send(`<message to='bob@localhost' type='chat' id='${body}'><body>${body}</body></message><r xmlns='urn:xmpp:sm:3'/>`);
        if (n % 5 === 0) await sleep(1);
      }
      await kill('SIGKILL');
      await alice.waitClosed();
      const h = Math.max(0, ...[...alice.text.matchAll(/<a xmlns="urn:xmpp:sm:3" h="(\d+)"\/>/g)].map((m) => Number(m[1])));
      const bounced = new Set([...alice.text.matchAll(/<message [^>]*id="(m\d+)"[^>]*type="error"|<message [^>]*type="error"[^>]*id="(m\d+)"/g)].map((m) => m[1] ?? m[2]));
      expect(h).toBeGreaterThan(0);
      acknowledged.push(...sent.slice(0, h).filter((b) => !bounced.has(b)));
      alice.close();
    }
    await start();
    const bob = await login('bob', 'builder', 'home');
    bob.send('<presence/>');
    const last = acknowledged[acknowledged.length - 1]!;
    await bob.waitFor(new RegExp(`<body>${last}</body>`), 15000);
    await sleep(300);
    const delivered = new Set([...bob.text.matchAll(/<body>(m\d+)<\/body>/g)].map((m) => m[1]));
    const lost = acknowledged.filter((b) => !delivered.has(b));
    if (process.env.XMPPD_CRASH_REPORT) console.log({ kills: KILLS, sent: n, acknowledged: acknowledged.length, delivered: delivered.size, lost: lost.length });
    expect({ acknowledged: acknowledged.length, lost }).toEqual({ acknowledged: acknowledged.length, lost: [] });
    bob.close();
    expect(await kill('SIGTERM')).toBe(0);
    const db = new Database(join(dir, 'data', 'xmppd.sqlite'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('stores messages queued for a hibernating (stream management) session offline on SIGTERM', async () => {
    await start();
    const bob = await login('bob', 'builder', 'phone');
    bob.send("<presence/><enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    await bob.waitFor(/<enabled [^>]*resume="true"/);
    // Bob's connection drops without a goodbye: the session hibernates, waiting for resumption.
    bob.socket.destroy();
    await sleep(200);
    const alice = await login('alice', 'wonderland', 'sender');
    alice.send("<message to='bob@localhost/phone' type='chat' id='h1'><body>while you sleep</body></message>");
    alice.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/id="sync"/);
    expect(alice.text).not.toMatch(/id="h1"[^>]*type="error"|type="error"[^>]*id="h1"/);
    alice.close();
    expect(await kill('SIGTERM')).toBe(0);
    await start();
    const back = await login('bob', 'builder', 'phone2');
    back.send('<presence/>');
    await back.waitFor(/<body>while you sleep<\/body>/, 10000);
    back.close();
    expect(await kill('SIGTERM')).toBe(0);
  });
});
