/**
 * Slows down password guessing: each failed login for an account, and from an address,
 * makes the next failure answer later (delay doubling up to a cap). Failures are forgotten
 * after a quiet period; a success clears the account's count but not the address's.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly baseDelayMs: number,
    private readonly maxDelayMs: number,
    private readonly forgetAfterMs = 15 * 60_000,
  ) {}

  /** Records a failure and returns how long to wait before answering it. */
  fail(account: string | undefined, address: string, now = Date.now()): number {
    let worst = 0;
    for (const key of account ? ['a:' + account, 'ip:' + address] : ['ip:' + address]) {
      const prev = this.failures.get(key);
      const count = prev && now - prev.last < this.forgetAfterMs ? prev.count + 1 : 1;
      this.failures.set(key, { count, last: now });
      worst = Math.max(worst, count);
    }
    this.prune(now);
    if (this.baseDelayMs === 0) return 0;
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(worst - 1, 20));
  }

  /** Failures recorded for an account or address within the window. */
  count(key: { account?: string; address?: string }, now = Date.now()): number {
    const k = key.account !== undefined ? 'a:' + key.account : 'ip:' + key.address;
    const entry = this.failures.get(k);
    return entry && now - entry.last < this.forgetAfterMs ? entry.count : 0;
  }

  succeed(account: string): void {
    this.failures.delete('a:' + account);
  }

  private prune(now: number): void {
    if (this.failures.size < 10_000) return;
    for (const [k, v] of this.failures) if (now - v.last >= this.forgetAfterMs) this.failures.delete(k);
  }
}
