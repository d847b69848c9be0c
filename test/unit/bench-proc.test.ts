// Per-thread CPU from /proc, as the benchmark reads the server's busiest thread.
import { Worker } from 'node:worker_threads';
import { threadCpuUs } from '../../bench/lib/proc';
import { since, snapshot } from '../../bench/lib/sessions';

const spin = (ms: number): void => {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* burn CPU on this thread */ }
};

describe('threadCpuUs', () => {
  it('lists this process\'s threads, the main one by the process id, and sees it work', () => {
    const before = threadCpuUs(process.pid);
    expect(before.has(process.pid)).toBe(true);
    spin(200);
    const after = threadCpuUs(process.pid);
    expect(after.get(process.pid)! - before.get(process.pid)!).toBeGreaterThanOrEqual(100_000);
    expect(threadCpuUs(2 ** 22 + 12345).size).toBe(0); // no such process
  });

  it('names the busiest thread in an interval, not the sum of all', async () => {
    // A second thread spins for 300 ms while this one waits; it stays until it is read.
    const worker = new Worker(
      "const { parentPort } = require('node:worker_threads'); const end = Date.now() + 300; while (Date.now() < end) {} parentPort.postMessage('spun');",
      { eval: true },
    );
    const a = snapshot(process.pid);
    await new Promise((resolve) => worker.once('message', resolve));
    const d = since(process.pid, a);
    await worker.terminate();
    expect(d.busiestThreadCpuUs).toBeGreaterThanOrEqual(150_000);
    expect(d.busiestThreadCpuUs).toBeLessThanOrEqual(d.serverCpuUs);
  });
});
