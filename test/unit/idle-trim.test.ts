// The trim runs in a process of its own: it waits for the process to be quiet, and a jest
// worker that ran other test files before may not be (their leftover timers and sockets).
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const SCENARIO = `
const { getHeapSpaceStatistics } = require('node:v8');
const { IdleTrim, TRIM_ATTEMPTS } = require(${JSON.stringify(join(__dirname, '../../dist/src/idle-trim.js'))});
const youngGeneration = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// A busy spell: short-lived garbage with survivors makes V8 grow the young generation.
let keep = [];
for (let i = 0; i < 3_000_000; i++) {
  keep.push({ i, s: 'x' + i });
  if (keep.length > 200_000) keep = [];
}
keep = [];
const grown = youngGeneration();
const attempts = [];
const trim = new IdleTrim((mib) => {
  attempts.push(mib);
  if (mib > 0 || attempts.length === TRIM_ATTEMPTS) {
    trim.stop();
    console.log(JSON.stringify({ grown, attempts, after: youngGeneration() }));
  }
}, { checkMs: 1000, quietChecks: 8 });
trim.start();
setTimeout(() => {}, 40_000); // keeps the process up (the trim's timer does not)
`;

describe('idle trim', () => {
  it('gives back the young generation a busy spell grew, once the process has been quiet', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, ['-e', SCENARIO], { timeout: 40_000 }, (err, stdout) => (stdout ? resolve(stdout) : reject(err)));
      child.stdout!.once('data', () => child.kill());
    });
    const { grown, attempts, after } = JSON.parse(out) as { grown: number; attempts: number[]; after: number };
    expect(grown).toBeGreaterThan(8 * 1048576);
    expect(attempts[attempts.length - 1]).toBeGreaterThan(4);
    expect(after).toBeLessThan(8 * 1048576);
  }, 45_000);
});
