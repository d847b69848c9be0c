/**
 * Soak test: our server under steady chat load and connection churn for a bounded time,
 * sampling its RSS, open file descriptors and responsiveness (ping round trip through the
 * event loop). Exits 1 when memory keeps growing, messages go missing, or it stops answering.
 *
 *   npx tsc -p . && node dist/bench/soak.js [--minutes 10] [--pairs 50] [--rate 2000] [--churn 10] [--sample 10]
 *
 * --rate is chat messages per second in total, --churn logins (each logging out again after
 * 1-5 s) per second. Everything runs on loopback and stops by itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { login, type XmppConnection } from './lib/client';
import { freePort, rssBytes, sleep } from './lib/proc';
import { passwordFor, userName } from './peers/types';

const ROOT = resolve(__dirname, '..', '..');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number, got ${process.argv[i + 1]}`);
  return v;
}

interface Sample { t: number; rssMiB: number; fds: number; pingMs: number; sent: number; delivered: number; logins: number }

async function main(): Promise<void> {
  const minutes = arg('minutes', 10);
  const pairs = arg('pairs', 50);
  const rate = arg('rate', 2000);
  const churn = arg('churn', 10);
  const sampleSeconds = arg('sample', 10);
  const churnPool = Math.max(20, churn * 10);

  const dir = mkdtempSync(join(tmpdir(), 'xmppd-soak-'));
  const port = await freePort();
  const config = join(dir, 'xmppd.yaml');
  writeFileSync(config, [
    'domains: [localhost]',
    `dataDir: ${join(dir, 'data')}`,
    'log: { level: warn, format: json }',
    `c2s: { host: 127.0.0.1, port: ${port}, tlsPort: null, requireTls: false }`,
    'http: { port: null, tlsPort: null }',
    'limits: { maxConnectionsPerAddress: 100000 }',
    'auth: { failureDelayMs: 0 }',
    '',
  ].join('\n'));
  const users = pairs * 2 + churnPool;
  execFileSync(process.execPath, [join(ROOT, 'dist', 'bench', 'peers', 'ours-accounts.js'), config, String(users)], { stdio: 'inherit' });
  const server = spawn(process.execPath, [join(ROOT, 'dist', 'bin', 'xmppd.js'), 'start'], {
    env: { ...process.env, XMPPD_CONFIG: config }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pid = server.pid!;
  const connect = (i: number, resource: string) => login({
    host: '127.0.0.1', port, domain: 'localhost', user: userName(i), password: passwordFor(userName(i)), resource, mechanism: 'SCRAM-SHA-1',
  });

  let failure: string | undefined;
  try {
    for (let i = 0; i < 100; i++) {
      try {
        (await connect(0, 'probe')).destroy();
        break;
      } catch {
        await sleep(100);
      }
    }
    // Chat: sender 2p writes to 2p+1's bare JID; receivers count what arrives.
    let sent = 0;
    let delivered = 0;
    const conns: XmppConnection[] = [];
    for (let p = 0; p < pairs; p++) {
      const a = await connect(2 * p, 'soak');
      const b = await connect(2 * p + 1, 'soak');
      b.send('<presence/>');
      b.onStanza = (buf, start) => {
        if (buf[start + 1] === 0x6d /* 'm' of <message */) delivered++;
      };
      a.onStanza = () => {};
      conns.push(a, b);
    }
    const pinger = await connect(0, 'pinger');
    await sleep(500);

    const deadline = Date.now() + minutes * 60_000;
    const tickMs = 100;
    const perTick = rate / (1000 / tickMs);
    let carry = 0;
    const chat = setInterval(() => {
      carry += perTick;
      const n = Math.floor(carry);
      carry -= n;
      for (let i = 0; i < n; i++) {
        const p = (sent + i) % pairs;
        conns[2 * p]!.send(`<message to='${userName(2 * p + 1)}@localhost' type='chat'><body>soak ${sent + i}</body></message>`);
      }
      sent += n;
    }, tickMs);

    let logins = 0;
    let churnFailures = 0;
    const churnTimer = setInterval(() => {
      for (let k = 0; k < churn; k++) {
        const i = pairs * 2 + Math.floor(Math.random() * churnPool);
        void connect(i, `churn${Math.floor(Math.random() * 1e9)}`).then((c) => {
          logins++;
          c.send('<presence/>');
          c.onStanza = () => {};
          setTimeout(() => void c.quickClose(), 1000 + Math.random() * 4000);
        }, () => { churnFailures++; });
      }
    }, 1000);

    const samples: Sample[] = [];
    const t0 = Date.now();
    while (Date.now() < deadline) {
      await sleep(Math.min(sampleSeconds * 1000, Math.max(0, deadline - Date.now())));
      const p0 = performance.now();
      await pinger.ping(`p${samples.length}`);
      const s: Sample = {
        t: Math.round((Date.now() - t0) / 1000), rssMiB: +(rssBytes(pid) / 1048576).toFixed(1),
        fds: readdirSync(`/proc/${pid}/fd`).length, pingMs: +(performance.now() - p0).toFixed(2), sent, delivered, logins,
      };
      samples.push(s);
      console.log(JSON.stringify({ sample: s }));
    }
    clearInterval(chat);
    clearInterval(churnTimer);
    await sleep(2000); // let the last messages arrive and churned sessions close

    // Verdicts. Memory: after warm-up (the first quarter), the last quarter may not sit far above the second.
    const q = Math.max(1, Math.floor(samples.length / 4));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const warm = median(samples.slice(q, 2 * q).map((s) => s.rssMiB));
    const last = median(samples.slice(-q).map((s) => s.rssMiB));
    const lost = sent - delivered;
    const worstPing = Math.max(...samples.map((s) => s.pingMs));
    const summary = {
      minutes, pairs, rate, churn, samples: samples.length, sent, delivered, lost, logins, churnFailures,
      rssFirstMiB: samples[0]?.rssMiB, rssWarmMiB: warm, rssLastMiB: last, fdsFirst: samples[0]?.fds, fdsLast: samples.at(-1)?.fds, worstPingMs: worstPing,
    };
    console.log(JSON.stringify({ summary }));
    if (samples.length >= 4 && last > warm * 1.5 && last - warm > 50) failure = `RSS grows: ${warm} MiB after warm-up, ${last} MiB at the end`;
    else if (lost > 0) failure = `${lost} chat messages were not delivered`;
    else if (worstPing > 5000) failure = `the server took ${worstPing} ms to answer a ping`;
    for (const c of [...conns, pinger]) c.destroy();
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  if (failure) {
    console.error(`soak: FAILED: ${failure}`);
    process.exit(1);
  }
  console.log('soak: ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
