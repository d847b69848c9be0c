import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives back the memory a busy spell left behind once the server has been quiet for a while.
 *
 * V8's young generation grows under load (to 32 MiB here: two semi-spaces of 16) and stays
 * that size: Node does not run V8's idle-time memory reducer, and a young generation only
 * shrinks in a full collection that sees a low allocation rate over the last seconds. On a
 * small server that is most of its memory: at 1000 idle sessions, 20 of 32 MiB. So when the
 * process has used almost no CPU for QUIET_CHECKS checks in a row and the young generation is
 * still large, this runs a full collection (tens of milliseconds, when nothing is waiting), at
 * most ATTEMPTS per quiet spell, and again only after the server has been busy in between.
 */
export class IdleTrim {
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private quietSince = 0;
  private trimmed = false;
  private readonly gc: () => void;

  private readonly checkMs: number;
  private readonly quietChecks: number;

  constructor(private readonly onTrim?: (freedMiB: number) => void, timing: { checkMs?: number; quietChecks?: number } = {}) {
    this.checkMs = timing.checkMs ?? CHECK_MS;
    this.quietChecks = timing.quietChecks ?? QUIET_CHECKS;
    // A gc() of our own, without --expose-gc on the command line: the flag applies to
    // contexts made after it is set.
    setFlagsFromString('--expose-gc');
    this.gc = runInNewContext('gc') as () => void;
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
    if (this.trimmed || ++this.quietSince < this.quietChecks) return;
    const before = youngGenerationBytes();
    if (before < TRIM_ABOVE_BYTES) {
      this.trimmed = true;
      return;
    }
    this.gc();
    const after = youngGenerationBytes();
    // V8 shrinks only when its recent allocation rate is low; if that was not yet so, the
    // next quiet checks try again, up to ATTEMPTS collections per quiet spell.
    if (after < TRIM_ABOVE_BYTES || this.quietSince >= this.quietChecks + ATTEMPTS - 1) this.trimmed = true;
    this.onTrim?.((before - after) / 1048576);
  }
}

const CHECK_MS = 2000;
/** At most this share of one core counts as quiet (pings and timers of idle sessions). */
const QUIET_CPU_SHARE = 0.02;
/** Quiet checks in a row before a trim: V8 judges the allocation rate over the last 5 s or so. */
const QUIET_CHECKS = 5;
/** Collections per quiet spell at most. */
const ATTEMPTS = 3;
/** A young generation at its starting size is left alone. */
const TRIM_ABOVE_BYTES = 8 * 1048576;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}
