import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { summarise } from '../../bench/archive-cost';

describe('archive cost pairs', () => {
  it('are the share of throughput lost with archiving on, summarised against the target', () => {
    const s = summarise([{ off: 100_000, on: 70_000 }, { off: 200_000, on: 150_000 }, { off: 100_000, on: 59_000 }, { off: 160_000, on: 128_000 }], 30);
    expect(s.costs.map((c) => Math.round(c * 1000) / 1000)).toEqual([30, 25, 41, 20]);
    expect(s.median).toBeCloseTo(27.5, 9);
    expect(s.mean).toBeCloseTo(29, 9);
    expect([s.min, s.max]).toEqual([20, 41]);
    expect(s.over).toBe(1); // 30 % itself is not over 30 %
    expect(summarise([{ off: 100, on: 80 }], 10).over).toBe(1);
  });

  it('say whether the median is under or over the target with 95 % confidence, or cannot be told', () => {
    const pairs = (costs: number[]) => costs.map((c) => ({ off: 100, on: 100 - c }));
    const under = summarise(pairs([20, 22, 25, 24, 21, 23, 26, 19, 27, 24]), 30);
    expect(under.interval).toEqual([expect.closeTo(20, 9), expect.closeTo(26, 9)]);
    expect(under.verdict).toBe('under');
    // Ten pairs: the interval runs from the 2nd to the 9th smallest cost; the 9th is 31.
    expect(summarise(pairs([20, 22, 25, 24, 21, 23, 26, 31, 27, 35]), 30).verdict).toBe('undecided');
    expect(summarise(pairs([40, 38, 35, 31, 45, 33, 36, 39, 32, 37]), 30).verdict).toBe('over');
    expect(summarise(pairs([20, 21, 22]), 30)).toMatchObject({ interval: undefined, verdict: 'undecided' });
  });

  it('refuse bad options before running anything', () => {
    const script = join(__dirname, '..', '..', 'dist', 'bench', 'archive-cost.js');
    for (const [args, says] of [[['--pairs', '0'], '--pairs must be a positive number'], [['--rounds', '3'], 'unknown option --rounds'], [['--pairs'], '--pairs needs a value']] as const) {
      const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(says);
    }
  });
});
