/** Small statistics helpers for the benchmark (no dependencies). */

/** Median of the finite values (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * The p-th percentile (0 <= p <= 100) of values already sorted ascending, by linear
 * interpolation between closest ranks (the "R-7"/Excel method: p=50 is the median, p=0 the
 * minimum, p=100 the maximum). NaN when empty.
 */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, n - 1);
  const frac = rank - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}

/** Percentiles of unsorted values (copied and sorted once). */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return ps.map((p) => percentileSorted(sorted, p));
}

/**
 * A confidence interval for the median of the population the values were drawn from, without
 * assuming its shape: the order statistics [x(k), x(n+1-k)] (1-based, sorted), with k the
 * largest such that P(B < k) <= (1 - confidence) / 2 for B ~ Binomial(n, 1/2) (the sign
 * test's interval; its coverage is at least `confidence`). Undefined when there are too few
 * values for that confidence (fewer than 6 at 0.95). Single runs on a shared machine swing
 * far more than any change worth claiming, so a median alone says little about a target.
 */
export function medianInterval(values: readonly number[], confidence = 0.95): [number, number] | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  const tail = (1 - confidence) / 2;
  // P(B <= j) for j = 0, 1, ...: the binomial terms C(n, j) / 2^n, each from the last, as
  // logarithms (2^-n is 0 in a double from n = 1075 on).
  let logTerm = -n * Math.LN2;
  let below = Math.exp(logTerm); // P(B <= 0)
  let k = 0; // P(B < k) <= tail holds for k = 0
  for (let j = 0; j < n && below <= tail; j++) {
    k = j + 1;
    logTerm += Math.log(n - j) - Math.log(j + 1);
    below += Math.exp(logTerm);
  }
  if (k === 0) return undefined;
  return [v[k - 1]!, v[n - k]!];
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const x of values) s += x;
  return s / values.length;
}

/**
 * A growable Float64 sample buffer (latencies): no per-sample allocation, sorted once at the end.
 */
export class Samples {
  private data: Float64Array;
  private n = 0;
  constructor(capacity = 1024) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  add(x: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = x;
  }
  get count(): number {
    return this.n;
  }
  /** Sorted copy of the samples. */
  sorted(): Float64Array {
    return this.data.slice(0, this.n).sort();
  }
  percentiles(ps: readonly number[]): number[] {
    const s = this.sorted();
    return ps.map((p) => percentileSorted(s, p));
  }
}

/** Rounds for display: 3 significant digits, integers kept whole. */
export function fmt(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toString();
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(2);
}

/** ours/peer, or NaN when either is missing or the peer is zero. */
export function ratio(ours: number, peer: number): number {
  if (!Number.isFinite(ours) || !Number.isFinite(peer) || peer === 0) return NaN;
  return ours / peer;
}
