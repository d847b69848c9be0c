/**
 * archive: the cost of message archiving (XEP-0313) and the latency of an archive query.
 *
 * 1. chat with archiving on or off (--mam on|off, one invocation each): --pairs pairs
 *    exchange --messages one-to-one messages at --window in flight per direction, exactly as
 *    the chat scenario does; with archiving on, the case ends when a MAM query for the latest
 *    message is answered (so the archive holds every message: a server that writes its
 *    archive after delivery pays for it inside the measured time). The cost of archiving is
 *    this case's throughput with --mam on against --mam off (docs/PERFORMANCE.md).
 * 2. with --mam on: u0 asks --queries times, one after the other, for the latest 50 messages
 *    of its conversation with u1 (mam:2 query with 'with' and RSM <max>50</max><before/>);
 *    reports latency p50/p99 (send to the iq result, after the 50 results) and server CPU per
 *    query. The archive then holds --prefill rows written before the start (ours through its
 *    mam store, bench/peers/ours-mam-fill.ts; Prosody straight into its SQL archive table, as
 *    mod_mam writes it; ejabberd likewise into its SQLite archive; the same messages for all,
 *    bench/peers/archive-fill.ts) plus two rows
 *    per message sent by the chat cases so far on this instance (each message is archived by
 *    the sender and the receiver): metric archive_rows.
 * All runs share one instance, so the archive grows from run to run.
 */
import type { XmppConnection } from '../lib/client';
import { attr, nameIs } from '../lib/reader';
import { closeSessions, openSessions, snapshot, since } from '../lib/sessions';
import { Samples } from '../lib/stats';
import type { Mechanism } from '../lib/client';
import { exchange } from './chat';
import type { CaseResult, Scenario, ScenarioContext } from './types';

/** Rows archived by the chat cases, per instance (pid), for archive_rows. */
const archivedByInstance = new Map<number, number>();

export const archiveScenario: Scenario = {
  name: 'archive',
  description: 'chat with archiving on or off (--mam), then the latency of a MAM query for the latest 50 messages of a conversation',
  instance: 'shared',
  options: {
    mam: { default: 'on', help: 'archiving on or off (the off case is the baseline for the cost)' },
    prefill: { default: '0', help: 'archive rows written before the start, the same messages for every server (e.g. 1000000)' },
    pairs: { default: '100', help: 'pairs of users (2 sessions each)' },
    messages: { default: '100000', help: 'chat messages per run' },
    window: { default: '10', help: 'chat messages in flight per direction' },
    'body-bytes': { default: '64', help: 'body length' },
    queries: { default: '200', help: 'MAM queries per run (one at a time)' },
    'max-seconds': { default: '300', help: 'time cap of the chat case' },
    mech: { default: 'SCRAM-SHA-1', help: 'SASL mechanism for the logins' },
  },
  metrics: {
    msgs_per_s: { unit: 'msg/s', better: 'higher', summary: true },
    server_cpu_us_per_msg: { unit: 'µs', better: 'lower', summary: true },
    query_p50_ms: { unit: 'ms', better: 'lower', summary: true },
    query_p99_ms: { unit: 'ms', better: 'lower', summary: true },
    server_cpu_us_per_query: { unit: 'µs', better: 'lower', summary: true },
    archive_rows: { unit: 'rows', better: 'lower', summary: true },
    latency_p50_ms: { unit: 'ms', better: 'lower' },
    latency_p99_ms: { unit: 'ms', better: 'lower' },
    results_per_query: { unit: '', better: 'higher' },
    server_busiest_thread_us_per_msg: { unit: 'µs', better: 'lower' },
    lost: { unit: '', better: 'lower' },
  },
  users: (opt) => 2 * Number(opt('pairs')),
  fileLimit: (opt) => 2 * Number(opt('pairs')) + 1000,
  features: (opt) => ({ mam: opt('mam') === 'on', mamPrefill: Number(opt('prefill')) }),
  async run(ctx) {
    const pairs = ctx.num('pairs');
    const mam = ctx.opt('mam') === 'on';
    const prefill = mam && ctx.instance.server !== 'relay' ? ctx.num('prefill') : 0;
    const conns = await openSessions(ctx, { from: 0, to: 2 * pairs, concurrency: 20, mechanism: ctx.opt('mech') as Mechanism, presence: true });
    const out: CaseResult[] = [];
    try {
      // With archiving on, the chat case ends when the archive has every message: a MAM query
      // is answered from the archive as written (ours writes it on its own thread, in batches,
      // and answers a query after writing what is queued; Prosody and ejabberd archive each
      // message before routing it), so the time and CPU to write it are in the figures.
      const settle = mam ? () => latestOne(ctx, conns[0]!) : undefined;
      const chat = await exchange(ctx, conns, pairs, ctx.num('window'), 0x61 + ctx.run, settle);
      const rows = (archivedByInstance.get(ctx.instance.pid) ?? 0) + (mam ? 2 * (chat.metrics.messages ?? 0) : 0);
      archivedByInstance.set(ctx.instance.pid, rows);
      out.push({ case: `chat, window ${ctx.num('window')}, archiving ${mam ? 'on' : 'off'}`, metrics: chat.metrics });
      if (mam) {
        const q = await queries(ctx, conns[0]!, `u1@${ctx.instance.domain}`);
        out.push({ case: `query latest 50 of a conversation${prefill > 0 ? `, ${prefill} rows prefilled` : ''}`, metrics: { ...q, archive_rows: rows + prefill } });
      }
    } finally {
      await closeSessions(conns);
    }
    return out;
  },
};

/** Asks for the latest message of the account's archive and waits for the answer. */
async function latestOne(ctx: ScenarioContext, conn: XmppConnection): Promise<void> {
  const id = `settle${ctx.run}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`MAM query ${id} not answered in 60 s`)), 60000);
    conn.onStanza = (buf, start, end) => {
      if (!nameIs(buf, start, 'iq') || attr(buf, start, 'id', end) !== id) return;
      clearTimeout(timer);
      if (attr(buf, start, 'type', end) !== 'result') ctx.log(`archive: query answered ${buf.toString('utf8', start, Math.min(end, start + 400))}`);
      resolve();
    };
    conn.send(
      `<iq type='set' id='${id}'><query xmlns='urn:xmpp:mam:2' queryid='${id}'>` +
        `<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><before/></set></query></iq>`,
    );
  });
}

async function queries(ctx: ScenarioContext, conn: XmppConnection, withJid: string): Promise<Record<string, number>> {
  const n = Math.max(1, ctx.num('queries'));
  const lat = new Samples(n);
  let results = 0;
  let pending: { id: string; resolve: () => void } | undefined;
  conn.onStanza = (buf, start, end) => {
    if (nameIs(buf, start, 'message')) {
      results++;
      return;
    }
    if (pending && nameIs(buf, start, 'iq') && attr(buf, start, 'id', end) === pending.id) {
      const type = attr(buf, start, 'type', end);
      if (type !== 'result') ctx.log(`archive: query answered ${buf.toString('utf8', start, Math.min(end, start + 400))}`);
      const p = pending;
      pending = undefined;
      p.resolve();
    }
  };
  const before = snapshot(ctx.instance.pid);
  try {
    for (let i = 0; i < n; i++) {
      const id = `mq${ctx.run}-${i}`;
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`MAM query ${id} not answered in 30 s`)), 30000);
        pending = { id, resolve: () => { clearTimeout(timer); resolve(); } };
        conn.send(
          `<iq type='set' id='${id}'><query xmlns='urn:xmpp:mam:2' queryid='${id}'>` +
            `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>` +
            `<field var='with'><value>${withJid}</value></field></x>` +
            `<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query></iq>`,
        );
      });
      lat.add(performance.now() - t0);
    }
  } finally {
    conn.onStanza = () => {};
  }
  const d = since(ctx.instance.pid, before);
  const [p50, p99] = lat.percentiles([50, 99]);
  return {
    queries: n,
    query_p50_ms: p50!,
    query_p99_ms: p99!,
    server_cpu_us_per_query: d.serverCpuUs / n,
    results_per_query: results / n,
  };
}
