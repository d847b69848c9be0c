/**
 * The project's benchmark: our server side by side with Prosody, ejabberd and a minimal relay.
 *
 *   npx tsc -p . && node dist/bench/run.js <scenario> [--server ours|prosody|ejabberd|relay|all|a,b]
 *       [--runs 3] [--out results.jsonl] [--sources 4] [--keep] [--profile DIR] [scenario options]
 *   node dist/bench/run.js list                       scenarios and their options
 *   node dist/bench/run.js summary results.jsonl...   the summary table of saved JSON lines
 *   node dist/bench/run.js serve <server> [--users N] [--seconds S]
 *                                                     start one peer with accounts u0.. (password
 *                                                     pw-u<i>-bench), print its port, stop after S s
 *
 * Prints one JSON line per run and case on stdout (and appends it to --out), progress on
 * stderr, and at the end a markdown summary table of medians with ratios ours/prosody and
 * ours/ejabberd. Server CPU is utime+stime of the server process from /proc/PID/stat (all its
 * threads), so the figures are CPU per operation rather than wall-clock rates, which depend on
 * what else runs on the machine. See docs/PERFORMANCE.md.
 */
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScramCache } from './lib/client';
import { raiseFileLimit } from './lib/proc';
import { summaryTable, type RunRecord } from './lib/summary';
import { PEERS, SERVER_NAMES, type Instance, type ServerName } from './peers';
import { SCENARIOS } from './scenarios';
import type { Scenario, ScenarioContext } from './scenarios/types';

const COMMON: Record<string, { default: string; help: string }> = {
  server: { default: 'all', help: 'ours, prosody, ejabberd, relay, all, or a comma-separated list' },
  runs: { default: '3', help: 'runs per server' },
  out: { default: '', help: 'also append the JSON lines to this file' },
  sources: { default: '4', help: 'loopback source addresses for client sockets (127.0.0.2 ...)' },
  keep: { default: 'false', help: 'keep the temp folders (configs, data, logs)' },
  profile: { default: '', help: 'our server only: write a V8 CPU profile (node --cpu-prof) into this folder' },
};

function usage(): string {
  const lines = ['usage: node dist/bench/run.js <scenario|list|summary> [options]', '', 'common options:'];
  for (const [k, v] of Object.entries(COMMON)) lines.push(`  --${k.padEnd(14)} ${v.help} (default: ${v.default || 'none'})`);
  for (const s of Object.values(SCENARIOS)) {
    lines.push('', `${s.name}: ${s.description} (${s.instance === 'shared' ? 'all runs on one instance' : 'a fresh instance per run'})`);
    for (const [k, v] of Object.entries(s.options)) lines.push(`  --${k.padEnd(14)} ${v.help} (default: ${v.default})`);
  }
  return lines.join('\n');
}

function parseArgs(argv: string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (a === '--keep') flags.set('keep', 'true');
      else {
        const v = argv[i + 1];
        if (v === undefined) throw new Error(`${a} needs a value`);
        flags.set(a.slice(2), v);
        i++;
      }
    } else positional.push(a);
  }
  return { positional, flags };
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function metricsOf(name: string) {
  return SCENARIOS[name]?.metrics;
}

async function runScenario(scenario: Scenario, flags: Map<string, string>): Promise<void> {
  for (const k of flags.keys()) {
    if (!(k in COMMON) && !(k in scenario.options)) throw new Error(`--${k} is not an option of ${scenario.name} (see: node dist/bench/run.js list)`);
  }
  const opt = (name: string): string => flags.get(name) ?? scenario.options[name]?.default ?? COMMON[name]?.default ?? '';
  const num = (name: string): number => {
    const v = Number(opt(name));
    if (!Number.isFinite(v)) throw new Error(`--${name} must be a number, not "${opt(name)}"`);
    return v;
  };
  const serverArg = opt('server');
  const servers = (serverArg === 'all' ? [...SERVER_NAMES] : serverArg.split(',').map((s) => s.trim())) as ServerName[];
  for (const s of servers) if (!PEERS[s]) throw new Error(`unknown server "${s}" (${SERVER_NAMES.join(', ')})`);
  const runs = num('runs');
  const out = opt('out');
  const keep = opt('keep') === 'true';
  const profileDir = opt('profile');
  const nSources = Math.max(1, num('sources'));
  const sources = Array.from({ length: nSources }, (_, i) => `127.0.0.${2 + i}`);

  // Computed before anything starts, so that a bad option value fails the invocation at once.
  const features = scenario.features?.(opt);
  const fileLimit = Math.max(4096, scenario.fileLimit?.(opt) ?? 4096);
  const got = raiseFileLimit(fileLimit + 1000);
  if (got < fileLimit) log(`warning: the open-files limit is ${got}, the scenario needs about ${fileLimit} (run as root or raise ulimit -n)`);

  const root = mkdtempSync(join(tmpdir(), 'xmppd-bench-'));
  chmodSync(root, 0o755); // Prosody and ejabberd run as their own users and must reach their folders
  const cacheDir = join(root, 'cache');
  mkdirSync(cacheDir, { mode: 0o755 });
  log(`${scenario.name}: servers ${servers.join(', ')}, ${runs} run(s), temp folder ${root}`);

  const options: Record<string, string> = {};
  for (const k of Object.keys(scenario.options)) options[k] = opt(k);
  const records: RunRecord[] = [];
  let instanceNo = 0;

  const emit = (rec: RunRecord) => {
    records.push(rec);
    const line = JSON.stringify(rec);
    process.stdout.write(`${line}\n`);
    if (out) appendFileSync(out, `${line}\n`);
  };

  const startInstance = async (server: ServerName): Promise<Instance> => {
    const workDir = join(root, `${server}-${++instanceNo}`);
    mkdirSync(workDir, { mode: 0o755 });
    const nodeArgs = server === 'ours' && profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    if (nodeArgs.length > 0) mkdirSync(profileDir, { recursive: true });
    const t0 = Date.now();
    const inst = await PEERS[server].start({ users: scenario.users(opt), workDir, cacheDir, nodeArgs, fileLimit: fileLimit + 1000, log, features });
    active.add(inst);
    log(`${server}: up on port ${inst.port} (pid ${inst.pid}) in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${inst.version}`);
    return inst;
  };

  // Ctrl-C or SIGTERM: stop the running server (it may run as another user) before leaving.
  const active = new Set<Instance>();
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping`);
    void Promise.all([...active].map((i) => i.stop()))
      .then(() => Promise.all(servers.map((s) => PEERS[s]?.cleanup?.())))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const stopInstance = async (inst: Instance): Promise<void> => {
    const t0 = Date.now();
    active.delete(inst);
    await inst.stop();
    log(`${inst.server}: stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };

  const scramCaches = new Map<ServerName, ScramCache>();
  try {
    for (const server of servers) {
      const avail = PEERS[server].available();
      if (avail !== true) {
        log(`skipping ${server}: ${avail}`);
        continue;
      }
      if (!scramCaches.has(server)) scramCaches.set(server, new ScramCache());
      let inst: Instance | undefined;
      try {
        for (let run = 1; run <= runs; run++) {
          if (!inst) {
            try {
              inst = await startInstance(server);
            } catch (err) {
              log(`${server}: could not start, skipping it: ${(err as Error).message}`);
              break;
            }
          }
          const ctx: ScenarioContext = {
            instance: inst,
            run,
            opt,
            num,
            sources,
            scramCache: scramCaches.get(server)!,
            log: (m) => log(`${server} run ${run}: ${m}`),
          };
          log(`${server}: ${scenario.name} run ${run}/${runs}`);
          let results;
          const t0 = Date.now();
          try {
            results = await scenario.run(ctx);
            log(`${server}: run ${run} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          } catch (err) {
            log(`${server}: run ${run} failed: ${(err as Error).stack ?? String(err)}`);
            await stopInstance(inst);
            inst = undefined;
            continue;
          }
          for (const r of results) {
            emit({
              scenario: scenario.name,
              server,
              version: inst.version,
              run,
              case: r.case,
              instance: scenario.instance,
              metrics: r.metrics,
              options,
              at: new Date().toISOString(),
            });
          }
          if (scenario.instance === 'per-run') {
            await stopInstance(inst);
            inst = undefined;
          }
        }
      } finally {
        if (inst) await stopInstance(inst);
      }
      if (server === 'ours' && profileDir) log(`ours: CPU profile written to ${profileDir} (node dist/bench/profile-top.js ${profileDir}/*.cpuprofile)`);
    }
  } finally {
    for (const server of servers) await PEERS[server]?.cleanup?.();
    if (keep) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(`\n${summaryTable(records, metricsOf)}\n`);
}

/** Starts one peer for manual tests and debugging; stops after `seconds` or on SIGINT/SIGTERM. */
async function serve(server: ServerName, users: number, seconds: number): Promise<void> {
  const peer = PEERS[server];
  if (!peer) throw new Error(`unknown server "${server}" (${SERVER_NAMES.join(', ')})`);
  const avail = peer.available();
  if (avail !== true) throw new Error(avail);
  raiseFileLimit(users + 5000);
  const root = mkdtempSync(join(tmpdir(), 'xmppd-bench-'));
  chmodSync(root, 0o755);
  mkdirSync(join(root, 'cache'), { mode: 0o755 });
  mkdirSync(join(root, 'instance'), { mode: 0o755 });
  const inst = await peer.start({ users, workDir: join(root, 'instance'), cacheDir: join(root, 'cache'), fileLimit: users + 5000, log });
  process.stdout.write(`${JSON.stringify({ server, port: inst.port, host: inst.host, domain: inst.domain, pid: inst.pid, folder: root, version: inst.version })}\n`);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, seconds * 1000);
    const stop = () => {
      clearTimeout(t);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await inst.stop();
  await peer.cleanup?.();
  log(`stopped; files kept in ${root}`);
}

async function main(): Promise<void> {
  const { positional, flags } = parseArgs(process.argv.slice(2));
  const cmd = positional[0];
  if (!cmd || cmd === 'help' || flags.has('help')) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (cmd === 'list') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (cmd === 'summary') {
    const records: RunRecord[] = [];
    for (const f of positional.slice(1)) {
      for (const line of readFileSync(f, 'utf8').split('\n')) if (line.trim().startsWith('{')) records.push(JSON.parse(line) as RunRecord);
    }
    process.stdout.write(`${summaryTable(records, metricsOf)}\n`);
    return;
  }
  if (cmd === 'serve') {
    await serve(positional[1] as ServerName, Number(flags.get('users') ?? '10'), Number(flags.get('seconds') ?? '600'));
    return;
  }
  const scenario = SCENARIOS[cmd];
  if (!scenario) throw new Error(`unknown scenario "${cmd}" (${Object.keys(SCENARIOS).join(', ')})`);
  await runScenario(scenario, flags);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  },
);
