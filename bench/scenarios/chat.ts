/**
 * chat: --pairs pairs of logged-in users (SCRAM-SHA-1, initial presence) exchange --messages
 * one-to-one chat messages in total, both directions at once, with at most --window messages
 * in flight per direction (the next one is sent when one is delivered). Messages go to the
 * receiver's bare JID (as a client does for a new chat). Reports delivered messages per second,
 * delivery latency p50/p99 (send to receipt, same process clock), the server's CPU per
 * delivered message (in all, and of its busiest thread) and the generator's own CPU per message.
 *
 * All runs share one server instance (the runner's --runs), to expose a slowdown between the
 * first and the last run; each run logs its sessions in and out again.
 */
import type { XmppConnection } from '../lib/client';
import { attrRange, nameIs } from '../lib/reader';
import { closeSessions, openSessions, rssMiB, snapshot, since } from '../lib/sessions';
import { Samples } from '../lib/stats';
import { userName } from '../peers/types';
import type { Mechanism } from '../lib/client';
import type { CaseResult, Scenario, ScenarioContext } from './types';

/**
 * Parses the id value '<tag><decimal>' ('b123' -> 123); -1 when there is none or the tag differs
 * (a late message of an earlier case).
 */
function seqOf(buf: Buffer, start: number, end: number, tag: number): number {
  const r = attrRange(buf, start, 'id', end);
  if (!r || buf[r[0]] !== tag) return -1;
  let n = 0;
  let any = false;
  for (let k = r[0] + 1; k < r[1]; k++) {
    const c = buf[k]! - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
    any = true;
  }
  return any ? n : -1;
}

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');

function body(bytes: number): string {
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += (s ? ' ' : '') + WORDS[i % WORDS.length];
  return s.slice(0, bytes);
}

export const chatScenario: Scenario = {
  name: 'chat',
  description: 'pairs of users exchanging one-to-one messages with a bounded window per direction',
  instance: 'shared',
  options: {
    pairs: { default: '100', help: 'pairs of users (2 sessions each)' },
    messages: { default: '200000', help: 'messages per run, all pairs and both directions together' },
    window: { default: '1,10', help: 'messages in flight per direction (a comma-separated list runs one case per value)' },
    'body-bytes': { default: '64', help: 'body length' },
    'max-seconds': { default: '300', help: 'time cap per run (undelivered messages are reported)' },
    mech: { default: 'SCRAM-SHA-1', help: 'SASL mechanism for the logins' },
  },
  metrics: {
    msgs_per_s: { unit: 'msg/s', better: 'higher', summary: true },
    server_cpu_us_per_msg: { unit: 'µs', better: 'lower', summary: true },
    latency_p50_ms: { unit: 'ms', better: 'lower', summary: true },
    latency_p99_ms: { unit: 'ms', better: 'lower', summary: true },
    client_cpu_us_per_msg: { unit: 'µs', better: 'lower' },
    server_busiest_thread_us_per_msg: { unit: 'µs', better: 'lower' },
    server_rss_mib: { unit: 'MiB', better: 'lower' },
    lost: { unit: '', better: 'lower' },
  },
  users: (opt) => 2 * Number(opt('pairs')),
  fileLimit: (opt) => 2 * Number(opt('pairs')) + 1000,
  async run(ctx) {
    const pairs = ctx.num('pairs');
    const conns: XmppConnection[] = await openSessions(ctx, {
      from: 0,
      to: 2 * pairs,
      concurrency: 20,
      mechanism: ctx.opt('mech') as Mechanism,
      presence: true,
    });
    const out: CaseResult[] = [];
    try {
      const windows = ctx.opt('window').split(',').map(Number);
      for (let k = 0; k < windows.length; k++) out.push(await exchange(ctx, conns, pairs, windows[k]!, 0x61 + (k % 26)));
    } finally {
      await closeSessions(conns);
    }
    return out;
  },
};

/**
 * One case: all pairs exchange the messages with `window` in flight per direction; ids are
 * '<tag><seq>'. `settle`, when given, runs after the last delivery and inside the measured
 * time: work the server still owes for the messages (writing its archive) counts.
 */
export async function exchange(
  ctx: ScenarioContext,
  conns: readonly Pick<XmppConnection, 'send' | 'onStanza'>[],
  pairs: number,
  window: number,
  tag: number,
  settle?: () => Promise<void>,
): Promise<CaseResult> {
  const perDir = Math.max(1, Math.floor(ctx.num('messages') / (2 * pairs)));
  const total = perDir * 2 * pairs;
  const text = body(ctx.num('body-bytes'));
  const domain = ctx.instance.domain;
  const lat = new Samples(total);
  let delivered = 0;
  let outOfOrder = 0;
  let before = snapshot(ctx.instance.pid);
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ctx.num('max-seconds') * 1000);
      // direction d = sender index (0 .. 2*pairs-1); its receiver is d ^ 1.
      const nDir = 2 * pairs;
      const sent = new Int32Array(nDir);
      const received = new Int32Array(nDir);
      const sendTimes = Array.from({ length: nDir }, () => new Float64Array(perDir));
      const prefix = Array.from({ length: nDir }, (_, d) => `<message to='${userName(d ^ 1)}@${domain}' type='chat' id='${String.fromCharCode(tag)}`);
      const suffix = `'><body>${text}</body></message>`;
      const sendNext = (d: number) => {
        const seq = sent[d]!++;
        sendTimes[d]![seq] = performance.now();
        conns[d]!.send(prefix[d]! + seq + suffix);
      };
      for (let r = 0; r < nDir; r++) {
        const d = r ^ 1; // messages arriving at r were sent by d
        conns[r]!.onStanza = (buf, start, end) => {
          if (!nameIs(buf, start, 'message')) return;
          const now = performance.now();
          const seq = seqOf(buf, start, end, tag);
          if (seq < 0 || seq >= perDir) return;
          if (seq !== received[d]) outOfOrder++;
          received[d]!++;
          lat.add(now - sendTimes[d]![seq]!);
          if (++delivered === total) {
            clearTimeout(timer);
            resolve();
            return;
          }
          if (sent[d]! < perDir) sendNext(d);
        };
      }
      before = snapshot(ctx.instance.pid);
      for (let d = 0; d < nDir; d++) for (let w = 0; w < window && sent[d]! < perDir; w++) sendNext(d);
    });
    if (settle !== undefined) await settle();
  } finally {
    for (const c of conns) c.onStanza = () => {};
  }
  const d = since(ctx.instance.pid, before);
  const rss = rssMiB(ctx.instance.pid);
  if (delivered < total) ctx.log(`chat: only ${delivered} of ${total} messages delivered within ${ctx.num('max-seconds')} s`);
  if (outOfOrder > 0) ctx.log(`chat: ${outOfOrder} messages arrived out of order`);
  const [p50, p99] = lat.percentiles([50, 99]);
  return {
    case: `${pairs} pairs, window ${window}`,
    metrics: {
      messages: delivered,
      lost: total - delivered,
      msgs_per_s: delivered / (d.wallMs / 1000),
      server_cpu_us_per_msg: d.serverCpuUs / delivered,
      client_cpu_us_per_msg: d.clientCpuUs / delivered,
      server_busiest_thread_us_per_msg: d.busiestThreadCpuUs / delivered,
      latency_p50_ms: p50!,
      latency_p99_ms: p99!,
      server_rss_mib: rss,
      wall_s: d.wallMs / 1000,
    },
  };
}
