/**
 * idle: memory per authenticated session. On a fresh instance, measure the server's RSS, then
 * log in sessions (SCRAM-SHA-1, bind, initial presence, a ping as a barrier) up to each size
 * in --sessions (cumulatively: 1000, then 4000 more to reach 5000, ...), wait --settle-ms and
 * measure RSS again: RSS per session = (RSS after - RSS before) / N. Connections are spread
 * over several source addresses (127.0.0.2, .3, ...) so that no address runs out of ephemeral
 * ports. Also reports the login rate and server CPU per session while ramping up.
 * With --tls on, every session does STARTTLS before SASL (the servers get the tls feature: the
 * bench certificate), and the cases are named "<n> sessions, TLS".
 */
import type { XmppConnection } from '../lib/client';
import { closeSessions, openSessions, rssMiB, snapshot, since } from '../lib/sessions';
import { sleep } from '../lib/proc';
import type { Mechanism } from '../lib/client';
import type { CaseResult, Scenario } from './types';

/** --tls: 'on' or 'off' (anything else is an error, not a silent plaintext run). */
export function tlsOn(opt: (name: string) => string): boolean {
  const v = opt('tls').trim().toLowerCase();
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`--tls must be on or off, not "${opt('tls')}"`);
}

function sizes(opt: (name: string) => string): number[] {
  return opt('sessions')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
}

export const idleScenario: Scenario = {
  name: 'idle',
  description: 'server RSS per authenticated session with initial presence, at several session counts',
  instance: 'per-run',
  options: {
    sessions: { default: '1000,5000,10000', help: 'session counts (cumulative on one instance per run)' },
    concurrency: { default: '50', help: 'parallel logins while ramping up' },
    mech: { default: 'SCRAM-SHA-1', help: 'SASL mechanism' },
    // Long enough for a quiet server to give memory back (ours: after 10 s, src/idle-trim.ts);
    // an idle server spends most of its life in that state.
    'settle-ms': { default: '15000', help: 'wait before each RSS reading' },
    tls: { default: 'off', help: 'on: STARTTLS (TLS 1.3) before SASL on every session' },
  },
  metrics: {
    rss_kib_per_session: { unit: 'KiB', better: 'lower', summary: true },
    rss_mib: { unit: 'MiB', better: 'lower', summary: true },
    ramp_logins_per_s: { unit: 'logins/s', better: 'higher' },
    server_cpu_us_per_session: { unit: 'µs', better: 'lower' },
    rss_before_mib: { unit: 'MiB', better: 'lower' },
  },
  users: (opt) => Math.max(...sizes(opt)),
  fileLimit: (opt) => Math.max(...sizes(opt)) + 2000,
  features: (opt) => (tlsOn(opt) ? { tls: true } : {}),
  async run(ctx) {
    const pid = ctx.instance.pid;
    const tls = tlsOn(ctx.opt);
    await sleep(ctx.num('settle-ms'));
    const rss0 = rssMiB(pid);
    const conns: XmppConnection[] = [];
    const out: CaseResult[] = [];
    try {
      for (const n of sizes(ctx.opt)) {
        const before = snapshot(pid);
        const added = await openSessions(ctx, {
          from: conns.length,
          to: n,
          concurrency: ctx.num('concurrency'),
          mechanism: ctx.opt('mech') as Mechanism,
          presence: true,
          tls,
        });
        const d = since(pid, before);
        if (tls && conns.length === 0 && added[0]) ctx.log(`idle: negotiated ${added[0].tlsSummary()}`);
        conns.push(...added);
        await sleep(ctx.num('settle-ms'));
        const rss = rssMiB(pid);
        out.push({
          case: `${n} sessions${tls ? ', TLS' : ''}`,
          metrics: {
            sessions: n,
            rss_kib_per_session: ((rss - rss0) * 1024) / n,
            rss_mib: rss,
            rss_before_mib: rss0,
            ramp_logins_per_s: added.length / (d.wallMs / 1000),
            server_cpu_us_per_session: d.serverCpuUs / added.length,
          },
        });
        ctx.log(`idle: ${n} sessions, RSS ${rss0.toFixed(1)} -> ${rss.toFixed(1)} MiB`);
      }
    } finally {
      await closeSessions(conns);
    }
    return out;
  },
};
