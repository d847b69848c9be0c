/** The summary tables: medians per server with ratios ours/prosody and ours/ejabberd. */
import { fmt, median, ratio } from './stats';
import type { MetricInfo } from '../scenarios/types';

export interface RunRecord {
  scenario: string;
  server: string;
  version?: string;
  run: number;
  case: string;
  instance?: 'shared' | 'per-run';
  metrics: Record<string, number>;
  options?: Record<string, string>;
  at?: string;
}

const SERVER_ORDER = ['ours', 'prosody', 'ejabberd', 'relay'];

function ordered<T>(items: Iterable<T>): T[] {
  // keeps first-seen order
  return [...new Set(items)];
}

/**
 * Markdown tables of the medians over runs. `metricsOf(scenario)` gives the metrics to show
 * (and their units) or undefined to show every metric found.
 */
export function summaryTable(records: readonly RunRecord[], metricsOf: (scenario: string) => Record<string, MetricInfo> | undefined): string {
  const lines: string[] = [];
  for (const scenario of ordered(records.map((r) => r.scenario))) {
    const recs = records.filter((r) => r.scenario === scenario);
    const servers = SERVER_ORDER.filter((s) => recs.some((r) => r.server === s)).concat(
      ordered(recs.map((r) => r.server)).filter((s) => !SERVER_ORDER.includes(s)),
    );
    const info = metricsOf(scenario);
    const metricNames = info
      ? Object.keys(info).filter((m) => info[m]!.summary)
      : ordered(recs.flatMap((r) => Object.keys(r.metrics)));
    const ratioPeers = ['prosody', 'ejabberd'].filter((p) => servers.includes(p) && servers.includes('ours'));
    const runs = Math.max(...recs.map((r) => r.run));
    lines.push(`### ${scenario} (median of ${runs} run${runs === 1 ? '' : 's'})`, '');
    lines.push(`| case | metric | ${servers.join(' | ')} |${ratioPeers.map((p) => ` ours/${p} |`).join('')}`);
    lines.push(`| --- | --- |${servers.map(() => ' ---: |').join('')}${ratioPeers.map(() => ' ---: |').join('')}`);
    for (const c of ordered(recs.map((r) => r.case))) {
      for (const m of metricNames) {
        const med = new Map<string, number>();
        for (const s of servers) {
          const vals = recs.filter((r) => r.server === s && r.case === c && m in r.metrics).map((r) => r.metrics[m]!);
          med.set(s, median(vals));
        }
        if ([...med.values()].every((v) => Number.isNaN(v))) continue;
        const unit = info?.[m]?.unit;
        const better = info?.[m]?.better;
        const label = `${m}${unit ? ` (${unit}${better ? `, ${better === 'higher' ? '↑' : '↓'}` : ''})` : ''}`;
        const cells = servers.map((s) => fmt(med.get(s)));
        const ratios = ratioPeers.map((p) => fmt(ratio(med.get('ours')!, med.get(p)!)));
        lines.push(`| ${c || '-'} | ${label} | ${cells.join(' | ')} |${ratios.map((x) => ` ${x} |`).join('')}`);
      }
    }
    lines.push('');
    if (recs.some((r) => r.instance === 'shared') && runs > 1) {
      lines.push(`Per run on one instance (run 1 … run ${runs}):`, '');
      lines.push(`| case | metric | server | ${Array.from({ length: runs }, (_, i) => `run ${i + 1}`).join(' | ')} |`);
      lines.push(`| --- | --- | --- |${Array.from({ length: runs }, () => ' ---: |').join('')}`);
      for (const c of ordered(recs.map((r) => r.case))) {
        for (const m of metricNames) {
          for (const s of servers) {
            const byRun = Array.from({ length: runs }, (_, i) => recs.find((r) => r.server === s && r.case === c && r.run === i + 1)?.metrics[m]);
            if (byRun.every((v) => v === undefined)) continue;
            lines.push(`| ${c || '-'} | ${m} | ${s} | ${byRun.map((v) => fmt(v)).join(' | ')} |`);
          }
        }
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}
