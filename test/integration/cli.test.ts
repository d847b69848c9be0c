// The xmppd command as an administrator uses it: accounts with the server stopped and
// running, status, sessions, kick, config errors, and a graceful SIGTERM.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';

const BIN = resolve(__dirname, '../../bin/xmppd');

interface Run { code: number; stdout: string; stderr: string }

function xmppd(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolvePromise) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

describe('xmppd CLI', () => {
  let dir: string;
  let env: Record<string, string>;
  let server: ChildProcess | undefined;

  beforeAll(() => {
    dir = tempDir('xmppd-cli-');
    const config = join(dir, 'xmppd.yaml');
    writeFileSync(config, [
      'domains: [localhost, example.test]',
      'dataDir: ./data',
      'log: { level: warn, format: json }',
      'c2s: { host: 127.0.0.1, port: 0, tlsPort: 0 }',
      'http: { host: 127.0.0.1, port: 0, tlsPort: 0 }',
      'auth: { failureDelayMs: 0 }',
      '',
    ].join('\n'));
    env = { XMPPD_CONFIG: config, XMPPD_C2S_REQUIRE_TLS: 'false' };
  });

  afterAll(() => {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('manages accounts while the server is stopped, with errors that say what to fix', async () => {
    expect(await xmppd(['user', 'add', 'alice@localhost', '--password', 'wonderland'], env)).toMatchObject({ code: 0, stdout: 'created alice@localhost\n' });
    const dup = await xmppd(['user', 'add', 'alice@localhost', '--password', 'x'], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('user alice@localhost already exists');
    const foreign = await xmppd(['user', 'add', 'eve@elsewhere.example', '--password', 'x'], env);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('elsewhere.example is not a domain of this server (configured: localhost, example.test)');
    const empty = await xmppd(['user', 'add', 'bob@localhost'], env, '\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('the password is empty');
    expect(await xmppd(['user', 'add', 'Carol@Example.TEST'], env, 'from-stdin\n')).toMatchObject({ code: 0, stdout: 'created carol@example.test\n' });

    expect((await xmppd(['user', 'list'], env)).stdout).toBe('alice@localhost\ncarol@example.test\n');
    expect((await xmppd(['user', 'list', 'example.test'], env)).stdout).toBe('carol@example.test\n');
    expect(await xmppd(['user', 'check', 'carol@example.test', '--password', 'from-stdin'], env)).toMatchObject({ code: 0 });
    const wrong = await xmppd(['user', 'check', 'carol@example.test', '--password', 'nope'], env);
    expect(wrong).toMatchObject({ code: 1 });
    expect(wrong.stderr).toContain('wrong password');
    expect(await xmppd(['user', 'passwd', 'carol@example.test', '--password', 'changed'], env)).toMatchObject({ code: 0 });
    expect(await xmppd(['user', 'check', 'carol@example.test', '--password', 'changed'], env)).toMatchObject({ code: 0 });
    expect(await xmppd(['user', 'del', 'carol@example.test'], env)).toMatchObject({ code: 0, stdout: 'deleted carol@example.test\n' });
    expect((await xmppd(['user', 'check', 'carol@example.test'], env)).stderr).toContain('does not exist');

    // Rooms too: a persistent room made while the server is stopped.
    expect(await xmppd(['room', 'create', 'tea@conference.localhost', '--name', 'Tea room', '--members-only'], env))
      .toMatchObject({ code: 0, stdout: 'created tea@conference.localhost\n' });
    const rooms = await xmppd(['room', 'list'], env);
    expect(rooms.stdout).toMatch(/^tea@conference\.localhost\t0 occupants\tpersistent,public,members-only\t"Tea room"$/m);
    const noRoom = await xmppd(['room', 'destroy', 'nope@conference.localhost'], env);
    expect(noRoom).toMatchObject({ code: 1 });
    expect(noRoom.stderr).toContain('there is no room nope@conference.localhost');

    const status = await xmppd(['status'], env);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('no server is running');
  });

  it('reports a bad config key and value by name', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'c2s:\n  prot: 5222\n');
    const r1 = await xmppd(['user', 'list'], { XMPPD_CONFIG: bad });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('"c2s.prot" is not a known setting');
    writeFileSync(bad, 'limits:\n  maxStanzaBytes: lots\n');
    const r2 = await xmppd(['user', 'list'], { XMPPD_CONFIG: bad });
    expect(r2.stderr).toContain('"limits.maxStanzaBytes" must be a whole number, got "lots"');
    const r3 = await xmppd(['user', 'list'], { ...env, XMPPD_C2S_PORT: '70000' });
    expect(r3.stderr).toContain('"XMPPD_C2S_PORT" must be a port number');
  });

  it('acts on the running server through its owner-only admin socket, and stops gracefully on SIGTERM', async () => {
    server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let status: Run | undefined;
    for (let i = 0; i < 100; i++) {
      status = await xmppd(['status'], env);
      if (status.code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status!.code).toBe(0);
    expect(status!.stdout).toContain('domains:     localhost, example.test');
    const port = Number(/c2s=(\d+)/.exec(status!.stdout)![1]);
    const socketPath = join(dir, 'data', 'xmppd.sock');
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, 'data', 'xmppd.sqlite'))).toBe(true);
    expect(existsSync(join(dir, 'data', 'certs', 'localhost.crt'))).toBe(true);

    // Account changes go through the running server.
    expect(await xmppd(['user', 'add', 'bob@localhost', '--password', 'builder'], env)).toMatchObject({ code: 0 });
    const bob = await RawClient.connect(port);
    expect(await bob.login('bob', 'builder', 'desk')).toBe('bob@localhost/desk');
    const sessions = await xmppd(['sessions'], env);
    expect(sessions.stdout).toMatch(/^bob@localhost\/desk\t127\.0\.0\.1\tpriority 0\tnot available$/m);

    const missing = await xmppd(['kick', 'bob@localhost/nowhere'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no session bob@localhost/nowhere is online');
    expect(await xmppd(['kick', 'bob@localhost/desk', '--reason', 'maintenance'], env)).toMatchObject({ code: 0 });
    await bob.waitFor(/<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text[^>]*>maintenance<\/text>/);
    await bob.waitClosed();

    // Rooms on the running server: the persistent room is there, occupants show, destroy tells them.
    expect((await xmppd(['room', 'list'], env)).stdout).toContain('tea@conference.localhost\t0 occupants');
    expect(await xmppd(['room', 'create', 'lobby@conference.localhost', '--temporary'], env)).toMatchObject({ code: 0 });
    const guest = await RawClient.connect(port);
    await guest.login('alice', 'wonderland', 'laptop');
    guest.send(`<presence to='lobby@conference.localhost/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await guest.waitFor(/<status code="110"\/>/);
    expect((await xmppd(['room', 'occupants', 'lobby@conference.localhost'], env)).stdout)
      .toMatch(/^Alice\talice@localhost\t(participant|moderator)\t(none|owner|member)$/m);
    expect(await xmppd(['room', 'destroy', 'lobby@conference.localhost', '--reason', 'closing time'], env)).toMatchObject({ code: 0 });
    await guest.waitFor(/<destroy[^>]*>.*closing time/s);
    guest.close();

    // SIGTERM: connected clients get system-shutdown and the process exits 0.
    const alice = await RawClient.connect(port);
    await alice.login('alice', 'wonderland', 'phone');
    const exited = new Promise<number | null>((r) => server!.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    await alice.waitFor(/<system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    expect(await exited).toBe(0);
    server = undefined;
    expect(existsSync(socketPath)).toBe(false);
  });
});
