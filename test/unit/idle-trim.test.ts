import { getHeapSpaceStatistics } from 'node:v8';
import { IdleTrim } from '../../src/idle-trim';

const youngGeneration = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

describe('idle trim', () => {
  it('gives back the young generation a busy spell grew, once the process has been quiet', async () => {
    // A busy spell: short-lived garbage with survivors makes V8 grow the young generation.
    let keep: object[] = [];
    for (let i = 0; i < 3_000_000; i++) {
      keep.push({ i, s: `x${i}` });
      if (keep.length > 200_000) keep = [];
    }
    keep = [];
    expect(youngGeneration()).toBeGreaterThan(8 * 1048576);
    const attempts: number[] = [];
    await new Promise<void>((resolve) => {
      const trim = new IdleTrim((mib) => {
        attempts.push(mib);
        if (mib > 0 || attempts.length === 4) {
          trim.stop();
          resolve();
        }
      }, { checkMs: 1000, quietChecks: 8 });
      trim.start();
    });
    expect(attempts[attempts.length - 1]).toBeGreaterThan(4);
    expect(youngGeneration()).toBeLessThan(8 * 1048576);
  }, 45_000);
});
