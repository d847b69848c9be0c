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

  it('refuse bad options before running anything', () => {
    const script = join(__dirname, '..', '..', 'dist', 'bench', 'archive-cost.js');
    for (const [args, says] of [[['--pairs', '0'], '--pairs must be a positive number'], [['--rounds', '3'], 'unknown option --rounds'], [['--pairs'], '--pairs needs a value']] as const) {
      const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(says);
    }
  });
});
