/**
 * Our server as a benchmark peer: `node dist/bin/xmppd.js start` on a free loopback port, with a
 * generated YAML config and data folder in the instance's temp folder.
 *
 * Knobs that differ from the defaults (see docs/PERFORMANCE.md):
 *  - c2s.requireTls false, c2s.tlsPort off, http ports off: plaintext logins on loopback, like
 *    the peers (no TLS cost in any of the three).
 *  - c2s.host 127.0.0.1: loopback only.
 *  - limits: connection caps and rate limits off (maxConnectionsPerAddress, and where the build
 *    has them maxConnections, bytesPerSecond/burstBytes, stanzasPerSecond/stanzaBurst; see
 *    limitOverrides): every connection comes from 127.0.0.x, and the peers run without shapers.
 *  - auth.failureDelayMs 0: no login is supposed to fail; a failure must not stall a worker.
 *  - log.level warn.
 *  - modules.mam false (when the build has it): archiving is off on all three servers, unless a
 *    scenario asks for the mam feature (archive).
 *  - with the muc feature (groupchat): muc { messageRatePerSecond: 0, maxOccupants: 1000,
 *    maxHistory: 20 } (defaults 5/s, 200, 50).
 *  - with the websocket feature: http on 127.0.0.1 and a free port (/xmpp-websocket).
 *  - with the tls feature: tls.cert/tls.key = the bench certificate (bench/peers/cert.ts). The
 *    c2s port offers STARTTLS in any case (without the feature, with the self-signed
 *    certificate the server makes in its data folder); requireTls stays false.
 * Every other module is on, as by default.
 * Accounts are created before start by bench/peers/ours-accounts.ts into a template database
 * (once per invocation and account count), which each instance copies.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../lib/proc';
import { benchCertificate, type BenchCert } from './cert';
import { spawnLogged, terminate, waitForXmpp, type Instance, type Peer, type PeerFeatures, type StartOptions } from './types';

/** Repository root (dist/bench/peers/ -> ../../..). */
export const ROOT = resolve(__dirname, '..', '..', '..');
const XMPPD = join(ROOT, 'dist', 'bin', 'xmppd.js');
const ACCOUNTS = join(ROOT, 'dist', 'bench', 'peers', 'ours-accounts.js');
const MAM_FILL = join(ROOT, 'dist', 'bench', 'peers', 'ours-mam-fill.js');

/** Names of the built-in modules of the build in dist/ (the server code changes under us). */
export function builtinModules(): string[] {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(join(ROOT, 'dist', 'modules', 'index.js')) as { BUILTIN_MODULES: { name: string }[] };
    return m.BUILTIN_MODULES.map((x) => x.name);
  } catch {
    return [];
  }
}

/** Modules turned off for the benchmark: message archiving (off on every peer). */
const OFF = ['mam'];

/**
 * Connection caps and rate limits (shapers) turned off: every benchmark connection comes from
 * 127.0.0.x and the peers run without shapers. Only the keys the build knows are written (the
 * server's limits are being extended while this benchmark exists); each gets 0 when the build
 * accepts 0 ("no limit"), else a value no run reaches. Add new limit settings here.
 */
const LIMITS_OFF = ['maxConnectionsPerAddress', 'maxConnections', 'bytesPerSecond', 'burstBytes', 'stanzasPerSecond', 'stanzaBurst'];
const NO_LIMIT = 1_000_000_000;

type BuildConfig = (raw: unknown, baseDir: string) => { limits: Record<string, number> };

export function limitOverrides(): Record<string, number> {
  let buildConfig: BuildConfig;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    buildConfig = (require(join(ROOT, 'dist', 'src', 'config.js')) as { buildConfig: BuildConfig }).buildConfig;
  } catch {
    return { maxConnectionsPerAddress: NO_LIMIT };
  }
  const known = Object.keys(buildConfig({}, ROOT).limits);
  const out: Record<string, number> = {};
  for (const k of LIMITS_OFF) {
    if (!known.includes(k)) continue;
    out[k] = NO_LIMIT;
  }
  // Prefer 0 where it is accepted (and means "off"); one key at a time, keeping what validates.
  for (const k of Object.keys(out)) {
    if (k === 'maxConnectionsPerAddress' || k === 'maxConnections' || k === 'burstBytes' || k === 'stanzaBurst') continue;
    try {
      buildConfig({ limits: { ...out, [k]: 0 } }, ROOT);
      out[k] = 0;
    } catch {
      /* keep NO_LIMIT */
    }
  }
  return out;
}

/**
 * Module settings per scenario feature: group chat without rate limit (messageRatePerSecond 0),
 * room size up to 1000 and history 20 (as the peers' bench configs); archiving on only when asked.
 */
export const MUC_BENCH = { messageRatePerSecond: 0, maxOccupants: 1000, maxHistory: 20 };

function moduleSettings(features: PeerFeatures = {}): string[] {
  const known = builtinModules();
  const parts: string[] = [];
  for (const m of known) if (OFF.includes(m) && !(m === 'mam' && features.mam)) parts.push(`${m}: false`);
  if (features.muc && known.includes('muc')) parts.push(`muc: { ${Object.entries(MUC_BENCH).map(([k, v]) => `${k}: ${v}`).join(', ')} }`);
  return parts;
}

function configYaml(dataDir: string, port: number, features: PeerFeatures = {}, httpPort: number | null = null, cert?: BenchCert): string {
  const mods = moduleSettings(features);
  const limits = limitOverrides();
  return [
    '# generated by bench/peers/ours.ts',
    'domains: [localhost]',
    `dataDir: ${JSON.stringify(dataDir)}`,
    'log: { level: warn, format: json }',
    `c2s: { host: 127.0.0.1, port: ${port}, tlsPort: null, requireTls: false }`,
    httpPort === null ? 'http: { port: null, tlsPort: null }' : `http: { host: 127.0.0.1, port: ${httpPort}, tlsPort: null }`,
    `limits: { ${Object.entries(limits).map(([k, v]) => `${k}: ${v}`).join(', ')} }`,
    'auth: { failureDelayMs: 0 }',
    ...(cert ? [`tls: { cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)} }`] : []),
    ...(mods.length > 0 ? [`modules: { ${mods.join(', ')} }`] : []),
    '',
  ].join('\n');
}

function version(features: PeerFeatures = {}): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require(join(ROOT, 'package.json')) as { version: string };
    let rev = '';
    try {
      rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      /* not a checkout */
    }
    const mods = builtinModules().filter((m) => !OFF.includes(m) || (m === 'mam' && features.mam));
    return `xmppd ${pkg.version}${rev ? ` (${rev}${dirty() ? '+local changes' : ''})` : ''}, node ${process.version}; modules: ${mods.join(' ')}`;
  } catch {
    return 'xmppd';
  }
}

function dirty(): boolean {
  try {
    return execFileSync('git', ['-C', ROOT, 'status', '--porcelain', 'src', 'modules', 'bin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
  } catch {
    return false;
  }
}

/** A database with accounts u0..u<n-1>, made once per count and copied into each instance. */
function accountTemplate(cacheDir: string, users: number, log: (m: string) => void): string {
  const dir = join(cacheDir, `ours-accounts-${users}`);
  const db = join(dir, 'xmppd.sqlite');
  if (existsSync(db)) return db;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cfg = join(dir, 'xmppd.yaml');
  writeFileSync(cfg, configYaml(dir, 1));
  const t0 = Date.now();
  execFileSync(process.execPath, [ACCOUNTS, cfg, String(users)], { stdio: ['ignore', 'ignore', 'pipe'] });
  log(`ours: created ${users} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s (template ${db})`);
  return db;
}

/** A copy of the account template with `rows` archive rows (mam store), made once per size. */
function archiveTemplate(cacheDir: string, accounts: string, users: number, rows: number, log: (m: string) => void): string {
  const dir = join(cacheDir, `ours-mam-${users}-${rows}`);
  const db = join(dir, 'xmppd.sqlite');
  if (existsSync(join(dir, 'done'))) return db;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  copyFileSync(accounts, db);
  const cfg = join(dir, 'xmppd.yaml');
  writeFileSync(cfg, configYaml(dir, 1, { mam: true }));
  const t0 = Date.now();
  execFileSync(process.execPath, [MAM_FILL, cfg, String(rows), String(users)], { stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(dir, 'done'), '');
  log(`ours: archived ${rows} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s (template ${db})`);
  return db;
}

export const ours: Peer = {
  name: 'ours',
  available() {
    return existsSync(XMPPD) ? true : `${XMPPD} is missing: run npx tsc -p . first`;
  },
  async start(opts: StartOptions): Promise<Instance> {
    let template = accountTemplate(opts.cacheDir, opts.users, opts.log);
    const prefill = opts.features?.mam ? (opts.features.mamPrefill ?? 0) : 0;
    if (prefill > 0) template = archiveTemplate(opts.cacheDir, template, opts.users, prefill, opts.log);
    const dataDir = join(opts.workDir, 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    copyFileSync(template, join(dataDir, 'xmppd.sqlite'));
    const port = await freePort();
    const httpPort = opts.features?.websocket ? await freePort() : null;
    const cfgFile = join(opts.workDir, 'xmppd.yaml');
    const cert = opts.features?.tls ? benchCertificate(opts.cacheDir, opts.log) : undefined;
    writeFileSync(cfgFile, configYaml(dataDir, port, opts.features, httpPort, cert));
    const logFile = join(opts.workDir, 'server.log');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      XMPPD_CONFIG: cfgFile,
      XMPPD_DATA_DIR: dataDir,
      XMPPD_C2S_REQUIRE_TLS: 'false',
      XMPPD_C2S_PORT: String(port),
      XMPPD_C2S_TLS_PORT: 'off',
      XMPPD_HTTP_PORT: httpPort === null ? 'off' : String(httpPort),
      XMPPD_HTTPS_PORT: 'off',
      XMPPD_LOG_LEVEL: 'warn',
    };
    // prlimit raises the open-files limit of the server alone.
    const child = spawnLogged(
      'prlimit',
      [`--nofile=${opts.fileLimit}:${opts.fileLimit}`, '--', process.execPath, ...(opts.nodeArgs ?? []), XMPPD, 'start'],
      { cwd: opts.workDir, env, logFile },
    );
    await waitForXmpp('127.0.0.1', port, 'localhost', child, logFile);
    // prlimit execs the command, so the child's PID is node's.
    return {
      server: 'ours',
      version: version(opts.features),
      ...(httpPort !== null ? { wsUrl: `ws://127.0.0.1:${httpPort}/xmpp-websocket` } : {}),
      host: '127.0.0.1',
      port,
      domain: 'localhost',
      pid: child.pid!,
      logFile,
      stop: () => terminate(child, [], 30000),
    };
  },
};
