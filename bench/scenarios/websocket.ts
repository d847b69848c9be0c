/**
 * websocket: the same logins and chat over WebSocket (RFC 7395, ws:// on the server's plain
 * HTTP port: ours /xmpp-websocket, Prosody's mod_websocket) and over TCP, on one instance.
 * Per transport (--transport, default both):
 *  - login: --logins full logins (SCRAM-SHA-1, bind, then close), --concurrency at a time;
 *    server CPU per login and logins/s.
 *  - chat: --pairs pairs exchange --messages one-to-one messages at --window in flight per
 *    direction (as the chat scenario); server CPU per message, msgs/s, latency.
 * A server without a WebSocket endpoint in the bench (the relay) runs the TCP cases only.
 */
import { login, type Mechanism, type XmppConnection } from '../lib/client';
import { closeSessions, openSessions, snapshot, since } from '../lib/sessions';
import { Samples } from '../lib/stats';
import { wsLogin, type WsConnection } from '../lib/ws-client';
import { passwordFor, userName } from '../peers/types';
import { exchange } from './chat';
import type { CaseResult, Scenario, ScenarioContext } from './types';

type Conn = XmppConnection | WsConnection;

async function connectOne(ctx: ScenarioContext, ws: boolean, i: number, resource: string): Promise<Conn> {
  const inst = ctx.instance;
  const user = userName(i);
  const common = { domain: inst.domain, localAddress: ctx.sources[i % ctx.sources.length], user, password: passwordFor(user), resource, mechanism: ctx.opt('mech') as Mechanism, scramCache: ctx.scramCache, timeoutMs: 60000 };
  return ws ? wsLogin({ url: inst.wsUrl!, ...common }) : login({ host: inst.host, port: inst.port, ...common });
}

async function logins(ctx: ScenarioContext, ws: boolean, users: number): Promise<CaseResult> {
  const n = ctx.num('logins');
  const lat = new Samples(n);
  let next = 0;
  const closing: Promise<void>[] = [];
  const before = snapshot(ctx.instance.pid);
  const worker = async () => {
    for (;;) {
      const k = next++;
      if (k >= n) return;
      const t0 = performance.now();
      const c = await connectOne(ctx, ws, k % users, `l${k}`);
      lat.add(performance.now() - t0);
      closing.push('quickClose' in c ? c.quickClose() : c.close());
    }
  };
  await Promise.all(Array.from({ length: ctx.num('concurrency') }, worker));
  await Promise.all(closing);
  const d = since(ctx.instance.pid, before);
  const [p50, p99] = lat.percentiles([50, 99]);
  return {
    case: `${ws ? 'WebSocket' : 'TCP'} login SCRAM-SHA-1, ${ctx.num('concurrency')} concurrent`,
    metrics: { logins: n, logins_per_s: n / (d.wallMs / 1000), server_cpu_us_per_login: d.serverCpuUs / n, login_p50_ms: p50!, login_p99_ms: p99!, client_cpu_us_per_login: d.clientCpuUs / n },
  };
}

async function openWs(ctx: ScenarioContext, n: number): Promise<WsConnection[]> {
  const out: WsConnection[] = new Array(n);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const c = (await connectOne(ctx, true, i, 'bench')) as WsConnection;
      c.send(`<presence xmlns='jabber:client'/>`);
      await c.ping(`p${i}`);
      c.drain();
      c.onStanza = () => {};
      out[i] = c;
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  return out;
}

export const websocketScenario: Scenario = {
  name: 'websocket',
  description: 'logins and one-to-one chat over WebSocket (RFC 7395) and over TCP, on one instance',
  instance: 'shared',
  options: {
    transport: { default: 'ws,tcp', help: 'ws, tcp or both' },
    logins: { default: '1000', help: 'logins per transport' },
    concurrency: { default: '50', help: 'logins at a time' },
    pairs: { default: '100', help: 'chat pairs' },
    messages: { default: '100000', help: 'chat messages per transport' },
    window: { default: '10', help: 'chat messages in flight per direction' },
    'body-bytes': { default: '64', help: 'body length' },
    'max-seconds': { default: '300', help: 'time cap of a chat case' },
    mech: { default: 'SCRAM-SHA-1', help: 'SASL mechanism' },
  },
  metrics: {
    server_cpu_us_per_login: { unit: 'µs', better: 'lower', summary: true },
    logins_per_s: { unit: 'login/s', better: 'higher', summary: true },
    server_cpu_us_per_msg: { unit: 'µs', better: 'lower', summary: true },
    msgs_per_s: { unit: 'msg/s', better: 'higher', summary: true },
    latency_p50_ms: { unit: 'ms', better: 'lower', summary: true },
    latency_p99_ms: { unit: 'ms', better: 'lower', summary: true },
    login_p50_ms: { unit: 'ms', better: 'lower' },
    client_cpu_us_per_msg: { unit: 'µs', better: 'lower' },
    lost: { unit: '', better: 'lower' },
  },
  users: (opt) => Math.max(200, 2 * Number(opt('pairs'))),
  fileLimit: (opt) => 2 * Number(opt('pairs')) + Number(opt('concurrency')) * 2 + 1000,
  features: () => ({ websocket: true }),
  async run(ctx) {
    const out: CaseResult[] = [];
    const users = Math.max(200, 2 * ctx.num('pairs'));
    for (const t of ctx.opt('transport').split(',')) {
      const ws = t.trim() === 'ws';
      if (ws && !ctx.instance.wsUrl) {
        ctx.log('websocket: no WebSocket endpoint on this server, ws cases skipped');
        continue;
      }
      out.push(await logins(ctx, ws, users));
      const pairs = ctx.num('pairs');
      const conns: Conn[] = ws ? await openWs(ctx, 2 * pairs) : await openSessions(ctx, { from: 0, to: 2 * pairs, concurrency: 20, mechanism: ctx.opt('mech') as Mechanism, presence: true });
      try {
        const r = await exchange(ctx, conns, pairs, ctx.num('window'), ws ? 0x77 : 0x74);
        out.push({ case: `${ws ? 'WebSocket' : 'TCP'} chat, window ${ctx.num('window')}`, metrics: r.metrics });
      } finally {
        if (ws) await Promise.all(conns.map((c) => c.close(5000)));
        else await closeSessions(conns as XmppConnection[]);
      }
    }
    return out;
  },
};
