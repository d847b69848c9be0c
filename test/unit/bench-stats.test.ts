import { Samples, fmt, mean, median, medianInterval, percentileSorted, percentiles, ratio } from '../../bench/lib/stats';
import { summaryTable, type RunRecord } from '../../bench/lib/summary';
import { ScramClient, ScramCache, deriveScramKeys, scramAttrs } from '../../bench/lib/client';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
  });
  it('ignores NaN and is NaN when empty', () => {
    expect(median([NaN, 1, 3])).toBe(2);
    expect(median([])).toBeNaN();
  });
  it('does not reorder its input', () => {
    const v = [3, 1, 2];
    median(v);
    expect(v).toEqual([3, 1, 2]);
  });
});

describe('percentiles', () => {
  const sorted = [10, 20, 30, 40, 50];
  it('interpolates linearly between closest ranks', () => {
    expect(percentileSorted(sorted, 0)).toBe(10);
    expect(percentileSorted(sorted, 50)).toBe(30);
    expect(percentileSorted(sorted, 100)).toBe(50);
    expect(percentileSorted(sorted, 25)).toBe(20);
    expect(percentileSorted(sorted, 90)).toBeCloseTo(46, 10);
    expect(percentileSorted([1, 2], 50)).toBe(1.5);
  });
  it('p50 equals the median', () => {
    const v = [9, 2, 7, 4, 4, 1, 8, 100];
    expect(percentiles(v, [50])[0]).toBe(median(v));
  });
  it('p99 of 1..100', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    const [p1, p99] = percentiles(v, [1, 99]);
    expect(p1).toBeCloseTo(1.99, 10);
    expect(p99).toBeCloseTo(99.01, 10);
  });
  it('is NaN when empty and rejects p outside 0..100', () => {
    expect(percentileSorted([], 50)).toBeNaN();
    expect(() => percentileSorted([1], 101)).toThrow(RangeError);
    expect(() => percentileSorted([1], -1)).toThrow(RangeError);
  });
  it('sorts numerically, not as strings', () => {
    expect(percentiles([10, 9, 100], [0, 100])).toEqual([9, 100]);
  });
});

describe('Samples', () => {
  it('grows past its capacity and gives sorted percentiles', () => {
    const s = new Samples(16);
    for (let i = 1000; i >= 1; i--) s.add(i);
    expect(s.count).toBe(1000);
    const [p0, p50, p100] = s.percentiles([0, 50, 100]);
    expect(p0).toBe(1);
    expect(p50).toBe(500.5);
    expect(p100).toBe(1000);
  });
});

describe('mean, ratio, fmt', () => {
  it('work', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(mean([])).toBeNaN();
    expect(ratio(2, 4)).toBe(0.5);
    expect(ratio(2, 0)).toBeNaN();
    expect(ratio(NaN, 1)).toBeNaN();
    expect(fmt(1234.5)).toBe('1235');
    expect(fmt(12.345)).toBe('12.3');
    expect(fmt(1.2345)).toBe('1.23');
    expect(fmt(0.012345)).toBe('0.012');
    expect(fmt(NaN)).toBe('-');
  });
});

describe('summaryTable', () => {
  const rec = (server: string, run: number, v: number): RunRecord => ({
    scenario: 'chat', server, run, case: 'c', instance: 'shared', metrics: { msgs_per_s: v },
  });
  it('shows medians per server and the ratios ours/prosody and ours/ejabberd', () => {
    const records = [
      rec('ours', 1, 100), rec('ours', 2, 300), rec('ours', 3, 200),
      rec('prosody', 1, 50), rec('prosody', 2, 50), rec('prosody', 3, 60),
      rec('ejabberd', 1, 400), rec('ejabberd', 2, 400), rec('ejabberd', 3, 400),
    ];
    const t = summaryTable(records, () => ({ msgs_per_s: { unit: 'msg/s', better: 'higher', summary: true } }));
    expect(t).toContain('| case | metric | ours | prosody | ejabberd | ours/prosody | ours/ejabberd |');
    expect(t).toContain('| c | msgs_per_s (msg/s, ↑) | 200 | 50.0 | 400 | 4.00 | 0.50 |');
    expect(t).toContain('| c | msgs_per_s | ours | 100 | 300 | 200 |');
  });
});

describe('SCRAM-SHA-1 client', () => {
  it('computes the RFC 5802 example proof and verifies the server signature', () => {
    // RFC 5802 §5: user "user", password "pencil"
    const c = new ScramClient('user', 'pencil');
    (c as unknown as { nonce: string }).nonce = 'fyko+d2lbbFgONRv9qkxdawL';
    (c as unknown as { clientFirstBare: string }).clientFirstBare = 'n=user,r=fyko+d2lbbFgONRv9qkxdawL';
    const final = c.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    expect(final).toBe('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    expect(() => c.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')).not.toThrow();
    expect(() => c.verify('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toThrow();
  });

  it('caches derived keys per user, salt and iteration count', () => {
    const cache = new ScramCache();
    const salt = Buffer.from('salt');
    const a = cache.keys('u', 'pw', salt, 64);
    const b = cache.keys('u', 'pw', salt, 64);
    cache.keys('u', 'pw', salt, 65);
    expect(a).toBe(b);
    expect(cache.derivations).toBe(2);
    const salted = pbkdf2Sync('pw', salt, 64, 20, 'sha1');
    const clientKey = createHmac('sha1', salted).update('Client Key').digest();
    expect(deriveScramKeys('pw', salt, 64).storedKey).toEqual(createHash('sha1').update(clientKey).digest());
  });

  it('parses SCRAM attribute lists', () => {
    expect([...scramAttrs('r=abc,s=c2FsdA==,i=4096')]).toEqual([['r', 'abc'], ['s', 'c2FsdA=='], ['i', '4096']]);
  });
});

describe('median interval', () => {
  const ranks = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

  it('is the sign test\'s order statistics, as tabulated', () => {
    // 95 % intervals (1-based order statistics) for n = 6, 10, 12, 20, 24: (1,6), (2,9), (3,10), (6,15), (7,18).
    expect(medianInterval(ranks(6))).toEqual([1, 6]);
    expect(medianInterval(ranks(10))).toEqual([2, 9]);
    expect(medianInterval(ranks(12))).toEqual([3, 10]);
    expect(medianInterval(ranks(20))).toEqual([6, 15]);
    expect(medianInterval(ranks(24))).toEqual([7, 18]);
    // Wider at 99 %: for n = 24, P(B <= 5) = 55 455 / 2^24 = 0.0033 is within 0.005 and
    // P(B <= 6) = 0.0113 is not, so (6, 19).
    expect(medianInterval(ranks(24), 0.99)).toEqual([6, 19]);
  });

  it('has none for too few values, sorts its input and ignores non-finite values', () => {
    expect(medianInterval(ranks(5))).toBeUndefined();
    expect(medianInterval([])).toBeUndefined();
    expect(medianInterval([9, 1, 8, 2, 7, 3, 6, 4, 5, 10, NaN])).toEqual([2, 9]);
  });

  it('stays close to the normal approximation for many values', () => {
    // n / 2 ± 1.96 · √n / 2 for n = 2000: 956.2 … 1043.8.
    expect(medianInterval(ranks(2000))).toEqual([956, 1045]);
  });
});
