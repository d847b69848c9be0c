/**
 * login: full logins (TCP connect, stream, SASL, stream restart, bind, stream close) with
 * PLAIN and with SCRAM-SHA-1, one at a time and `--concurrency` at once. Reports logins/s,
 * the server's CPU per login (utime+stime of its process / logins), the login latency (connect
 * to bind result) and the generator's own CPU per login.
 *
 * SCRAM clients cache their derived keys (see lib/client.ts), so a SCRAM login costs the
 * server HMACs only; a PLAIN login against SCRAM-hashed storage costs it one PBKDF2 with the
 * stored iteration count (4096 everywhere here), which dominates.
 */
import { login, type Mechanism } from '../lib/client';
import { Samples } from '../lib/stats';
import { snapshot, since } from '../lib/sessions';
import { passwordFor, userName } from '../peers/types';
import { sleep } from '../lib/proc';
import type { CaseResult, Scenario, ScenarioContext } from './types';

async function loginCase(ctx: ScenarioContext, mechanism: Mechanism, concurrency: number, count: number, maxMs: number, pool: number): Promise<CaseResult> {
  const inst = ctx.instance;
  const lat = new Samples(count);
  let issued = 0;
  let done = 0;
  let failures = 0;
  let firstError = '';
  const deadline = performance.now() + maxMs;
  const closing: Promise<void>[] = [];
  const before = snapshot(inst.pid);
  let lastDone = before.wallMs;
  const worker = async () => {
    while (issued < count && performance.now() < deadline) {
      const i = issued++;
      const user = userName(i % pool);
      const t0 = performance.now();
      try {
        const conn = await login({
          host: inst.host,
          port: inst.port,
          domain: inst.domain,
          localAddress: ctx.sources[i % ctx.sources.length],
          user,
          password: passwordFor(user),
          resource: `l${ctx.run}-${i}`,
          mechanism,
          scramCache: ctx.scramCache,
          timeoutMs: 30000,
        });
        lat.add(performance.now() - t0);
        // Close as a client that leaves does: footer and FIN, without waiting for the server's
        // footer (ejabberd sends it about 100 ms later, which would dominate a sequential run).
        closing.push(conn.quickClose(5000));
        done++;
        lastDone = performance.now();
      } catch (err) {
        failures++;
        firstError ||= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  // The server's work for the last closes is part of the logins' cost: wait for them before
  // reading its CPU (the rate uses the time of the last completed login).
  await Promise.all(closing);
  await sleep(100);
  const d = since(inst.pid, before);
  d.wallMs = lastDone - before.wallMs;
  if (failures > 0) ctx.log(`login ${mechanism} x${concurrency}: ${failures} failures, first: ${firstError}`);
  const [p50, p99] = lat.percentiles([50, 99]);
  return {
    case: `${mechanism} ${concurrency === 1 ? 'sequential' : `${concurrency} concurrent`}`,
    metrics: {
      logins: done,
      failures,
      logins_per_s: done / (d.wallMs / 1000),
      server_cpu_us_per_login: d.serverCpuUs / done,
      client_cpu_us_per_login: d.clientCpuUs / done,
      latency_p50_ms: p50!,
      latency_p99_ms: p99!,
      wall_s: d.wallMs / 1000,
    },
  };
}

export const loginScenario: Scenario = {
  name: 'login',
  description: 'full logins (connect, SASL, bind, close): PLAIN and SCRAM-SHA-1, sequential and concurrent',
  instance: 'shared',
  options: {
    logins: { default: '1000', help: 'logins per case' },
    concurrency: { default: '50', help: 'parallel logins in the concurrent cases' },
    mechs: { default: 'PLAIN,SCRAM-SHA-1', help: 'SASL mechanisms to run' },
    pool: { default: '200', help: 'accounts used round-robin' },
    'max-seconds': { default: '30', help: 'time cap per case' },
  },
  metrics: {
    logins_per_s: { unit: 'logins/s', better: 'higher', summary: true },
    server_cpu_us_per_login: { unit: 'µs', better: 'lower', summary: true },
    latency_p50_ms: { unit: 'ms', better: 'lower', summary: true },
    latency_p99_ms: { unit: 'ms', better: 'lower' },
    client_cpu_us_per_login: { unit: 'µs', better: 'lower' },
    failures: { unit: '', better: 'lower' },
  },
  users: (opt) => Number(opt('pool')),
  fileLimit: (opt) => Number(opt('concurrency')) * 4 + 1000,
  async run(ctx) {
    const pool = ctx.num('pool');
    const count = ctx.num('logins');
    const maxMs = ctx.num('max-seconds') * 1000;
    const conc = ctx.num('concurrency');
    // Warm-up (not measured): every pool account logs in once with SCRAM, which fills the
    // client's key cache and lets the servers warm up (JIT, caches, account lookups).
    await loginCase(ctx, 'SCRAM-SHA-1', Math.min(conc, 20), pool, maxMs, pool);
    const out: CaseResult[] = [];
    for (const mech of ctx.opt('mechs').split(',') as Mechanism[]) {
      for (const c of [1, conc]) out.push(await loginCase(ctx, mech, c, count, maxMs, pool));
    }
    return out;
  },
};
