/** What a benchmark peer (a server under test) looks like to the runner and the scenarios. */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { XmppConnection } from '../lib/client';
import { isAlive, sleep } from '../lib/proc';

export type ServerName = 'ours' | 'prosody' | 'ejabberd' | 'relay';
export const SERVER_NAMES: readonly ServerName[] = ['ours', 'prosody', 'ejabberd', 'relay'];

/** Benchmark accounts: user u<i> has password passwordFor(i); every peer gets the same ones. */
export function userName(i: number): string {
  return `u${i}`;
}
export function passwordFor(user: string): string {
  return `pw-${user}-bench`;
}

export interface StartOptions {
  /** Accounts u0 .. u<users-1> must exist when start() resolves. */
  users: number;
  /** A fresh folder for this instance (config, data, logs). */
  workDir: string;
  /** A folder kept for the whole invocation, for account templates shared by instances. */
  cacheDir: string;
  /** Extra node options for our server (e.g. --cpu-prof); ignored by the others. */
  nodeArgs?: string[];
  /** Open-files limit for the server process. */
  fileLimit: number;
  /** What the scenario needs beyond one-to-one chat (group chat, archiving, WebSocket). */
  features?: PeerFeatures;
  log: (msg: string) => void;
}

/**
 * Optional server features a scenario turns on (off unless asked for):
 *  - muc: a MUC service on conference.<domain>, no rate limits, no room archive, history 20;
 *  - mam: message archiving (XEP-0313) for accounts;
 *  - websocket: the RFC 7395 endpoint on a plain HTTP port (Instance.wsUrl).
 *  - tls: STARTTLS on the c2s port with the bench certificate (bench/peers/cert.ts); plaintext
 *    logins stay allowed (c2s does not require TLS).
 * Our server has MUC on by default (so `muc` only changes its knobs) and mam off in the bench.
 */
export interface PeerFeatures {
  muc?: boolean;
  mam?: boolean;
  websocket?: boolean;
  tls?: boolean;
  /** Ours only: archive rows written before the start through the mam store (archive scenario). */
  mamPrefill?: number;
}

export interface Instance {
  server: ServerName;
  version: string;
  host: string;
  port: number;
  domain: string;
  /** The process whose CPU and RSS are measured (beam.smp, lua5.4, node). */
  pid: number;
  logFile: string;
  /** ws://127.0.0.1:PORT/PATH when the websocket feature was asked for and is supported. */
  wsUrl?: string;
  stop(): Promise<void>;
}

export interface Peer {
  name: ServerName;
  /** Whether the server can be run here (installed); a reason when not. */
  available(): string | true;
  start(opts: StartOptions): Promise<Instance>;
  /** Called once at the end of an invocation (e.g. to stop helper daemons the peer started). */
  cleanup?(): Promise<void>;
}

/** Spawns a server with stdout/stderr to a log file. */
export function spawnLogged(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string }): ChildProcess {
  const fd = openSync(opts.logFile, 'a');
  try {
    return spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', fd, fd], detached: false });
  } finally {
    closeSync(fd);
  }
}

export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/**
 * Waits until the server answers a stream header with stream features (so it is really up,
 * not just listening), or throws with the log's tail.
 */
export async function waitForXmpp(host: string, port: number, domain: string, child: ChildProcess, logFile: string, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(logFile)}`);
    }
    try {
      const c = await XmppConnection.connect({ host, port, domain });
      const t = setTimeout(() => c.destroy(), 3000);
      try {
        await c.openStream(domain);
        return;
      } finally {
        clearTimeout(t);
        c.destroy();
      }
    } catch (err) {
      lastErr = err;
      await sleep(200);
    }
  }
  throw new Error(`server not ready after ${timeoutMs} ms (${String(lastErr)}):\n${tail(logFile)}`);
}

/** SIGTERM, wait for exit (bounded), then SIGKILL. */
export async function terminate(child: ChildProcess, pids: number[] = [], graceMs = 15000): Promise<void> {
  const targets = [...new Set([...pids, ...(child.pid ? [child.pid] : [])])];
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  for (const pid of pids.length > 0 ? pids : targets) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && targets.some(isAlive)) await Promise.race([exited, sleep(100)]);
  for (const pid of targets) {
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await Promise.race([exited, sleep(2000)]);
}
