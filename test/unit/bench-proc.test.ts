// Per-thread CPU from /proc, as the benchmark reads the server's busiest thread.
import { Worker } from 'node:worker_threads';
import { CLK_TCK, threadCpuUs } from '../../bench/lib/proc';
import { since, snapshot } from '../../bench/lib/sessions';

/** Burns `ms` of this process's CPU time on this thread (a busy machine only makes it take longer). */
const spin = (ms: number): void => {
  const start = process.cpuUsage();
  while (process.cpuUsage(start).user < ms * 1000) for (let i = 0; i < 1e5; i++) { /* burn */ }
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
    // A second thread, once told to, spins until it has had 300 ms of CPU (by its own /proc
    // entry, so that a busy machine only makes it take longer) while this one waits. It waits
    // for the word, so that all of its spinning falls between the two snapshots even when
    // this thread gets no CPU for a while after starting it (a loaded machine); its listener
    // keeps it alive until terminated, so that it is still there for the second snapshot.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const { readFileSync } = require('node:fs');
       const ticks = () => readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
       parentPort.on('message', () => {
         const start = ticks();
         while (ticks() - start < 30) for (let i = 0; i < 1e6; i++) {}
         parentPort.postMessage('spun');
       });`,
      { eval: true },
    );
    await new Promise((resolve) => worker.once('online', resolve));
    const a = snapshot(process.pid);
    worker.postMessage('go');
    await new Promise((resolve) => worker.once('message', resolve));
    const d = since(process.pid, a);
    await worker.terminate();
    expect(d.busiestThreadCpuUs).toBeGreaterThanOrEqual(150_000);
    // Give or take a clock tick: a snapshot reads the process's total just before its threads'.
    expect(d.busiestThreadCpuUs).toBeLessThanOrEqual(d.serverCpuUs + 1e6 / CLK_TCK);
  });
});
