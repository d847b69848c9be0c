/**
 * groupchat: one MUC room (XEP-0045) on conference.<domain> per case, with --occupants
 * sessions in it (each its own account and session, joining room@conference.<domain>/n<i>
 * with <history maxstanzas='0'/>). The first occupant creates the room and submits the
 * instant-room form (empty submit: non-persistent, the server's defaults), so the room is
 * unlocked on every server. Then --senders occupants send groupchat messages (64-byte body),
 * each with at most --window messages in flight: a message is done when every occupant
 * (the sender too: its reflection) has received it, then the sender sends the next one.
 *
 * Deliveries = messages x occupants. Reports delivered stanzas/s, the server's CPU per
 * delivered stanza, delivery latency p50/p99 (send to receipt at each occupant) and the
 * generator's CPU per delivery. All runs share one instance; each run logs its sessions in,
 * joins, sends, and logs out again (a fresh room name per run and case).
 */
import type { XmppConnection } from '../lib/client';
import { attr, attrRange, nameIs } from '../lib/reader';
import { closeSessions, openSessions, rssMiB, snapshot, since } from '../lib/sessions';
import { Samples } from '../lib/stats';
import type { Mechanism } from '../lib/client';
import type { CaseResult, Scenario, ScenarioContext } from './types';

const NS_MUC = 'http://jabber.org/protocol/muc';

function body(bytes: number): string {
  return 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore'.repeat(4).slice(0, bytes);
}

/** id = '<tag><sender>-<seq>'; returns sender * 2^20 + seq, or -1. */
export function idOf(buf: Buffer, start: number, end: number, tag: number): number {
  const r = attrRange(buf, start, 'id', end);
  if (!r || buf[r[0]] !== tag) return -1;
  let a = 0;
  let b = 0;
  let dash = false;
  for (let k = r[0] + 1; k < r[1]; k++) {
    const ch = buf[k]!;
    if (ch === 0x2d) {
      if (dash) return -1;
      dash = true;
      continue;
    }
    const c = ch - 0x30;
    if (c < 0 || c > 9) return -1;
    if (dash) b = b * 10 + c;
    else a = a * 10 + c;
  }
  return dash ? a * 1048576 + b : -1;
}

export const groupchatScenario: Scenario = {
  name: 'groupchat',
  description: 'one MUC room with N occupants, a few senders with a bounded window; deliveries = messages x occupants',
  instance: 'shared',
  options: {
    occupants: { default: '50,200', help: 'occupants of the room (a comma-separated list runs one case per value)' },
    senders: { default: '5', help: 'occupants that send' },
    window: { default: '2', help: 'messages in flight per sender (done when every occupant got it)' },
    deliveries: { default: '400000', help: 'deliveries per case (messages = deliveries / occupants)' },
    'body-bytes': { default: '64', help: 'body length' },
    'max-seconds': { default: '240', help: 'time cap per case' },
    mech: { default: 'SCRAM-SHA-1', help: 'SASL mechanism for the logins' },
  },
  metrics: {
    deliveries_per_s: { unit: 'stanza/s', better: 'higher', summary: true },
    server_cpu_us_per_delivery: { unit: 'µs', better: 'lower', summary: true },
    latency_p50_ms: { unit: 'ms', better: 'lower', summary: true },
    latency_p99_ms: { unit: 'ms', better: 'lower', summary: true },
    join_ms_per_occupant: { unit: 'ms', better: 'lower' },
    client_cpu_us_per_delivery: { unit: 'µs', better: 'lower' },
    server_rss_mib: { unit: 'MiB', better: 'lower' },
    lost: { unit: '', better: 'lower' },
  },
  users: (opt) => Math.max(...opt('occupants').split(',').map(Number)),
  fileLimit: (opt) => Math.max(...opt('occupants').split(',').map(Number)) + 1000,
  features: () => ({ muc: true }),
  async run(ctx) {
    const out: CaseResult[] = [];
    const sizes = ctx.opt('occupants').split(',').map(Number);
    for (let k = 0; k < sizes.length; k++) {
      const n = sizes[k]!;
      const conns = await openSessions(ctx, { from: 0, to: n, concurrency: 20, mechanism: ctx.opt('mech') as Mechanism, presence: true });
      try {
        const room = `bench-r${ctx.run}-c${k}-${n}@conference.${ctx.instance.domain}`;
        const joinMs = await joinRoom(ctx, conns, room);
        out.push(await exchange(ctx, conns, room, 0x61 + (k % 26), joinMs / n));
      } finally {
        await closeSessions(conns);
      }
    }
    return out;
  },
};

/** Waits for the presence (or error) addressed from `from`; returns it as a string. */
function awaitFrom(conn: XmppConnection, from: string, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      conn.onStanza = () => {};
      reject(new Error(`no ${what} from ${from} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.onStanza = (buf, start, end) => {
      if (attr(buf, start, 'from', end) !== from) return;
      const s = buf.toString('utf8', start, end);
      if (what === 'self-presence' && !(s.startsWith('<presence') && (s.includes("code='110'") || s.includes('code="110"') || s.includes("type='error'") || s.includes('type="error"')))) return;
      if (what === 'config result' && !s.startsWith('<iq')) return;
      clearTimeout(t);
      conn.onStanza = () => {};
      resolve(s);
    };
  });
}

async function join(conn: XmppConnection, room: string, nick: string): Promise<void> {
  const full = `${room}/${nick}`;
  const p = awaitFrom(conn, full, 60000, 'self-presence');
  conn.send(`<presence to='${full}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
  const s = await p;
  if (s.includes("type='error'") || s.includes('type="error"')) throw new Error(`join of ${full} failed: ${s}`);
}

/** The first occupant creates and configures (instant room) the room, then the others join, 20 at a time. */
async function joinRoom(ctx: ScenarioContext, conns: XmppConnection[], room: string): Promise<number> {
  const t0 = performance.now();
  await join(conns[0]!, room, 'n0');
  const cfg = awaitFrom(conns[0]!, room, 30000, 'config result');
  conns[0]!.send(`<iq type='set' to='${room}' id='cfg1'><query xmlns='${NS_MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
  const r = await cfg;
  if (!r.includes("type='result'") && !r.includes('type="result"')) ctx.log(`groupchat: instant-room config answered ${r.slice(0, 300)}`);
  let next = 1;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= conns.length) return;
      await join(conns[i]!, room, `n${i}`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  // Let the last joins' presence broadcasts reach everyone before measuring.
  await new Promise((res) => setTimeout(res, 1000));
  return performance.now() - t0;
}

async function exchange(ctx: ScenarioContext, conns: XmppConnection[], room: string, tag: number, joinMsPerOccupant: number): Promise<CaseResult> {
  const n = conns.length;
  const senders = Math.min(n, Math.max(1, ctx.num('senders')));
  const window = Math.max(1, ctx.num('window'));
  const perSender = Math.max(1, Math.floor(ctx.num('deliveries') / n / senders));
  const total = perSender * senders * n;
  const text = body(ctx.num('body-bytes'));
  const lat = new Samples(total);
  let delivered = 0;
  const sendTimes = Array.from({ length: senders }, () => new Float64Array(perSender));
  const counts = Array.from({ length: senders }, () => new Int32Array(perSender));
  const sent = new Int32Array(senders);
  const prefix = `<message to='${room}' type='groupchat' id='${String.fromCharCode(tag)}`;
  const suffix = `'><body>${text}</body></message>`;
  let before = snapshot(ctx.instance.pid);
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ctx.num('max-seconds') * 1000);
      const sendNext = (s: number) => {
        const seq = sent[s]!++;
        sendTimes[s]![seq] = performance.now();
        conns[s]!.send(`${prefix}${s}-${seq}${suffix}`);
      };
      for (let r = 0; r < n; r++) {
        conns[r]!.onStanza = (buf, start, end) => {
          if (!nameIs(buf, start, 'message')) return;
          const now = performance.now();
          const id = idOf(buf, start, end, tag);
          if (id < 0) return;
          const s = Math.floor(id / 1048576);
          const seq = id % 1048576;
          if (s >= senders || seq >= perSender) return;
          lat.add(now - sendTimes[s]![seq]!);
          if (++delivered === total) {
            clearTimeout(timer);
            resolve();
            return;
          }
          const cs = counts[s]!;
          cs[seq] = cs[seq]! + 1;
          if (cs[seq] === n && sent[s]! < perSender) sendNext(s);
        };
      }
      before = snapshot(ctx.instance.pid);
      for (let s = 0; s < senders; s++) for (let w = 0; w < window && sent[s]! < perSender; w++) sendNext(s);
    });
  } finally {
    for (const c of conns) c.onStanza = () => {};
  }
  const d = since(ctx.instance.pid, before);
  const rss = rssMiB(ctx.instance.pid);
  if (delivered < total) ctx.log(`groupchat: only ${delivered} of ${total} deliveries within ${ctx.num('max-seconds')} s`);
  const [p50, p99] = lat.percentiles([50, 99]);
  return {
    case: `${n} occupants, ${senders} senders, window ${window}`,
    metrics: {
      messages: perSender * senders,
      deliveries: delivered,
      lost: total - delivered,
      deliveries_per_s: delivered / (d.wallMs / 1000),
      server_cpu_us_per_delivery: d.serverCpuUs / Math.max(1, delivered),
      client_cpu_us_per_delivery: d.clientCpuUs / Math.max(1, delivered),
      latency_p50_ms: p50 ?? NaN,
      latency_p99_ms: p99 ?? NaN,
      join_ms_per_occupant: joinMsPerOccupant,
      server_rss_mib: rss,
      wall_s: d.wallMs / 1000,
    },
  };
}
