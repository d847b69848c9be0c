/** Opening and closing many sessions at once, and server measurement snapshots, for scenarios. */
import { login, type Mechanism, type XmppConnection } from './client';
import { cpuTimes, rssBytes, selfCpuUs, threadCpuUs } from './proc';
import { passwordFor, userName } from '../peers/types';
import type { ScenarioContext } from '../scenarios/types';

export interface OpenOptions {
  /** Account indexes [from, to). */
  from: number;
  to: number;
  concurrency: number;
  mechanism: Mechanism;
  /** Send initial presence and wait for a ping answer (so the presence was processed). */
  presence: boolean;
  resource?: (i: number) => string;
  /** STARTTLS before SASL. */
  tls?: boolean;
}

/** Logs in accounts [from, to) with bounded concurrency; returns the connections in index order. */
export async function openSessions(ctx: ScenarioContext, o: OpenOptions): Promise<XmppConnection[]> {
  const inst = ctx.instance;
  const out: XmppConnection[] = new Array(o.to - o.from);
  let next = o.from;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined) {
      const i = next++;
      if (i >= o.to) return;
      const user = userName(i);
      try {
        const conn = await login({
          host: inst.host,
          port: inst.port,
          domain: inst.domain,
          localAddress: ctx.sources[i % ctx.sources.length],
          user,
          password: passwordFor(user),
          resource: o.resource ? o.resource(i) : 'bench',
          mechanism: o.mechanism,
          scramCache: ctx.scramCache,
          timeoutMs: 60000,
          tls: o.tls,
        });
        if (o.presence) {
          conn.send('<presence/>');
          await conn.ping(`p${i}`);
        }
        conn.drain();
        conn.onStanza = () => {};
        out[i - o.from] = conn;
      } catch (err) {
        failed ??= new Error(`login of ${user} failed: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  if (failed !== undefined) {
    await closeSessions(out.filter((c) => c !== undefined), o.concurrency);
    throw failed;
  }
  return out;
}

/** Closes sessions gracefully (stream footer, wait for the server's), a batch at a time. */
export async function closeSessions(conns: readonly XmppConnection[], concurrency = 200): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= conns.length) return;
      await conns[i]!.close(5000);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

/** A snapshot of the server's CPU (in all and per thread), the generator's CPU and the wall clock. */
export interface Snapshot {
  serverCpuUs: number;
  clientCpuUs: number;
  wallMs: number;
  threadCpuUs: Map<number, number>;
}

/** What happened between two snapshots. */
export interface Interval {
  serverCpuUs: number;
  clientCpuUs: number;
  wallMs: number;
  /**
   * CPU of the server's busiest thread: the part of the work that does not spread over cores
   * (our routing thread, Prosody's one thread, ejabberd's busiest scheduler). When it nears
   * wallMs, that thread is what limits throughput.
   */
  busiestThreadCpuUs: number;
}

export function snapshot(pid: number): Snapshot {
  return { serverCpuUs: cpuTimes(pid).cpuUs, clientCpuUs: selfCpuUs(), wallMs: performance.now(), threadCpuUs: threadCpuUs(pid) };
}

export function since(pid: number, a: Snapshot): Interval {
  const b = snapshot(pid);
  let busiest = 0;
  for (const [tid, us] of b.threadCpuUs) busiest = Math.max(busiest, us - (a.threadCpuUs.get(tid) ?? 0));
  return {
    serverCpuUs: b.serverCpuUs - a.serverCpuUs,
    clientCpuUs: b.clientCpuUs - a.clientCpuUs,
    wallMs: b.wallMs - a.wallMs,
    busiestThreadCpuUs: busiest,
  };
}

export function rssMiB(pid: number): number {
  return rssBytes(pid) / (1024 * 1024);
}
