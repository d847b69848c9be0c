import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives back the memory a busy spell left behind once the server has been quiet for a while.
 *
 * V8's young generation grows under load (to 32 MiB here: two semi-spaces of 16) and stays
 * that size: Node does not run V8's idle-time memory reducer, and a young generation only
 * shrinks in a full collection that sees a low allocation rate over the last seconds. On a
 * small server that is most of its memory: at 1000 idle sessions, 20 of 32 MiB. So when the
 * process has used almost no CPU for a while and the young generation is still large, this
 * runs a young-generation collection, then from QUIET_CHECKS quiet checks on a full one per
 * check (tens of milliseconds, when nothing is waiting) until the young generation has
 * shrunk, at most TRIM_ATTEMPTS of them; again only after the server has been busy in between.
 */
export class IdleTrim {
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private quietSince = 0;
  private trimmed = false;
  private readonly gc: (options?: { type: 'minor' | 'major' }) => void;

  private readonly checkMs: number;
  private readonly quietChecks: number;

  constructor(private readonly onTrim?: (freedMiB: number) => void, timing: { checkMs?: number; quietChecks?: number } = {}) {
    this.checkMs = timing.checkMs ?? CHECK_MS;
    this.quietChecks = timing.quietChecks ?? QUIET_CHECKS;
    // A gc() of our own, without --expose-gc on the command line: the flag applies to
    // contexts made after it is set.
    setFlagsFromString('--expose-gc');
    this.gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.checkMs).unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const cpu = process.cpuUsage(this.lastCpu);
    this.lastCpu = process.cpuUsage();
    const busyShare = (cpu.user + cpu.system) / 1000 / this.checkMs;
    if (busyShare > QUIET_CPU_SHARE) {
      this.quietSince = 0;
      this.trimmed = false;
      return;
    }
    if (this.trimmed) return;
    const quiet = ++this.quietSince;
    const before = youngGenerationBytes();
    if (before < TRIM_ABOVE_BYTES) {
      this.trimmed = true;
      return;
    }
    // V8 shrinks the young generation in a full collection only when its allocation rate,
    // averaged over the collections of the last 5 s or so, is low. A young-generation
    // collection as soon as the server is quiet closes the busy spell's last interval, so
    // that the full collections from `quietChecks` on see only the quiet.
    if (quiet === 1) {
      this.gc({ type: 'minor' });
      return;
    }
    if (quiet < this.quietChecks) return;
    this.gc();
    const after = youngGenerationBytes();
    if (after < TRIM_ABOVE_BYTES || quiet >= this.quietChecks + TRIM_ATTEMPTS - 1) this.trimmed = true;
    this.onTrim?.((before - after) / 1048576);
  }
}

const CHECK_MS = 2000;
/** At most this share of one core counts as quiet (pings and timers of idle sessions). */
const QUIET_CPU_SHARE = 0.02;
/** Quiet checks in a row before the first full collection (the first one is 1). */
const QUIET_CHECKS = 4;
/**
 * Full collections per quiet spell at most, one per check. V8 does not always shrink the young
 * generation in the first ones after a busy spell: on a loaded machine the first one or two
 * often left it as it was and the next one gave back 31 MiB (four attempts were sometimes all
 * too early). Each costs a few milliseconds on a quiet server.
 */
export const TRIM_ATTEMPTS = 8;
/** A young generation at its starting size is left alone. */
const TRIM_ABOVE_BYTES = 8 * 1048576;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}
