/**
 * Top self-time functions of V8 CPU profiles (node --cpu-prof), e.g. of our server during the
 * chat scenario (node dist/bench/run.js chat --server ours --profile DIR).
 *
 *   node dist/bench/profile-top.js FILE.cpuprofile... [--top 30] [--by function|file]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface TopEntry {
  key: string;
  selfUs: number;
  share: number;
}

function place(cf: CallFrame): string {
  if (!cf.url) return '';
  let u = cf.url.replace(/^file:\/\//, '');
  if (u.startsWith('/')) u = relative(process.cwd(), u) || u;
  return `${u}:${cf.lineNumber + 1}`;
}

/** Self time per function (or per file) over the profile's samples, largest first. */
export function topSelf(profile: Profile, by: 'function' | 'file' = 'function'): { total: number; entries: TopEntry[] } {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    const cf = node.callFrame;
    const key =
      by === 'file'
        ? cf.url ? place({ ...cf, lineNumber: -1 }).replace(/:0$/, '') : `(${cf.functionName || 'anonymous'})`
        : `${cf.functionName || '(anonymous)'} ${place(cf)}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const entries = [...self.entries()]
    .map(([key, selfUs]) => ({ key, selfUs, share: total > 0 ? selfUs / total : 0 }))
    .sort((a, b) => b.selfUs - a.selfUs);
  return { total, entries };
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 30;
  let by: 'function' | 'file' = 'function';
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') top = Number(args[++i]);
    else if (args[i] === '--by') by = args[++i] === 'file' ? 'file' : 'function';
    else files.push(args[i]!);
  }
  for (const f of files) {
    const { total, entries } = topSelf(JSON.parse(readFileSync(f, 'utf8')) as Profile, by);
    process.stdout.write(`${f}: ${(total / 1e6).toFixed(2)} s sampled\n\n| self % | self ms | ${by} |\n| ---: | ---: | --- |\n`);
    for (const e of entries.slice(0, top)) {
      process.stdout.write(`| ${(e.share * 100).toFixed(1)} | ${(e.selfUs / 1000).toFixed(0)} | ${e.key.replace(/\|/g, '\\|')} |\n`);
    }
    process.stdout.write('\n');
  }
}

if (require.main === module) main();
