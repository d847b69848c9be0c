/**
 * What archiving costs chat throughput, measured the way its target is stated: runs of the
 * archive scenario with archiving off and on, alternating, each on a fresh server, taken in
 * pairs, and the throughput each pair loses with archiving on. On a shared machine a single
 * run swings by ±10 % and the machine's load changes within minutes, so one pair says little:
 * this prints every pair, then the median with its 95 % confidence interval, the mean, the
 * range and how many pairs exceed the target, and whether the median is under or over the
 * target with that confidence or cannot be told apart from it.
 *
 *   npx tsc -p . && node dist/bench/archive-cost.js [--pairs 12] [--messages 300000]
 *       [--server ours] [--target 30] [--out results.jsonl]
 *
 * The runs are `node dist/bench/run.js archive --runs 1 --queries 1 --mam off|on` (the chat
 * case, counted until the archive holds every message); --out appends their JSON lines.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mean, median, medianInterval } from './lib/stats';

export interface Pair {
  /** Messages a second with archiving off, then on. */
  off: number;
  on: number;
}

export interface CostSummary {
  /** Per pair, in order: the share of throughput lost with archiving on, in percent. */
  costs: number[];
  median: number;
  mean: number;
  min: number;
  max: number;
  /** Pairs whose cost is above the target. */
  over: number;
  /** 95 % confidence interval of the median cost (stats.ts medianInterval); undefined below 6 pairs. */
  interval: [number, number] | undefined;
  /** Whether the median cost is under the target with 95 % confidence, over it, or cannot be told from these pairs. */
  verdict: 'under' | 'over' | 'undecided';
}

/** The cost of each pair ((off − on) / off, in percent) and their summary against a target in percent. */
export function summarise(pairs: readonly Pair[], targetPct: number): CostSummary {
  const costs = pairs.map((p) => (100 * (p.off - p.on)) / p.off);
  const interval = medianInterval(costs);
  return {
    costs,
    median: median(costs),
    mean: mean(costs),
    min: Math.min(...costs),
    max: Math.max(...costs),
    over: costs.filter((c) => c > targetPct).length,
    interval,
    verdict: interval === undefined ? 'undecided' : interval[1] < targetPct ? 'under' : interval[0] > targetPct ? 'over' : 'undecided',
  };
}

const OPTIONS: Record<string, string> = { pairs: '12', messages: '300000', server: 'ours', target: '30', out: '' };

function options(argv: string[]): Record<string, string> {
  const opts = { ...OPTIONS };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!.replace(/^--/, '');
    const value = argv[i + 1];
    if (!(name in OPTIONS) || !argv[i]!.startsWith('--')) throw new Error(`unknown option ${argv[i]} (options: ${Object.keys(OPTIONS).map((k) => `--${k}`).join(' ')})`);
    if (value === undefined) throw new Error(`--${name} needs a value`);
    opts[name] = value;
  }
  for (const k of ['pairs', 'messages', 'target']) {
    if (!(Number(opts[k]) > 0)) throw new Error(`--${k} must be a positive number, not "${opts[k]}"`);
  }
  return opts;
}

/** One run of the archive scenario; its chat case's metrics. */
function run(opts: Record<string, string>, mam: 'off' | 'on', dir: string): { msgsPerS: number; cpuUsPerMsg: number; line: string } {
  const file = join(dir, `${mam}.jsonl`);
  rmSync(file, { force: true });
  const args = [join(__dirname, 'run.js'), 'archive', '--server', opts.server!, '--runs', '1', '--mam', mam, '--messages', opts.messages!, '--queries', '1', '--out', file];
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const lines = r.status === 0 ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(`archiving ${mam}`)) : [];
  if (lines.length !== 1) throw new Error(`the archive run with archiving ${mam} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  const { metrics } = JSON.parse(lines[0]!) as { metrics: { msgs_per_s: number; server_cpu_us_per_msg: number; lost: number } };
  if (metrics.lost > 0) throw new Error(`the archive run with archiving ${mam} lost ${metrics.lost} messages`);
  return { msgsPerS: metrics.msgs_per_s, cpuUsPerMsg: metrics.server_cpu_us_per_msg, line: lines[0]! };
}

function main(): void {
  const opts = options(process.argv.slice(2));
  const count = Number(opts.pairs);
  const target = Number(opts.target);
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-archive-cost-'));
  const pairs: Pair[] = [];
  const rate = (n: number): string => Math.round(n).toLocaleString('en-US');
  try {
    for (let i = 1; i <= count; i++) {
      const off = run(opts, 'off', dir);
      const on = run(opts, 'on', dir);
      if (opts.out) appendFileSync(opts.out, `${off.line}\n${on.line}\n`);
      pairs.push({ off: off.msgsPerS, on: on.msgsPerS });
      const cost = summarise([pairs[pairs.length - 1]!], target).costs[0]!;
      process.stdout.write(`pair ${i}: off ${rate(off.msgsPerS)} msg/s (${off.cpuUsPerMsg.toFixed(2)} µs), on ${rate(on.msgsPerS)} msg/s (${on.cpuUsPerMsg.toFixed(2)} µs): ${cost.toFixed(1)} %\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const s = summarise(pairs, target);
  const interval = s.interval === undefined ? 'too few pairs for a 95 % interval' : `95 % interval of the median ${s.interval[0].toFixed(1)}-${s.interval[1].toFixed(1)} %`;
  const verdict = { under: `under ${target} %`, over: `over ${target} %`, undecided: `cannot tell whether under or over ${target} % (more pairs, or a quieter machine)` }[s.verdict];
  process.stdout.write(`${opts.server}, ${count} pairs of ${opts.messages} messages: archiving costs a median ${s.median.toFixed(1)} % of the throughput `
    + `(${interval}; mean ${s.mean.toFixed(1)} %, ${s.min.toFixed(1)}-${s.max.toFixed(1)} %); ${s.over} of ${count} pairs over ${target} %\n`
    + `with 95 % confidence: ${verdict}\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`archive-cost: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
