import fc from 'fast-check';
import { IdCodec, words } from '../../modules/mam/store';

describe('archive full-text words', () => {
  it('splits, lower-cases and strips diacritics', () => {
    expect(words("Don't STOP, café-crème 42x")).toEqual(['don', 't', 'stop', 'cafe', 'creme', '42x']);
    expect(words('  ')).toEqual([]);
  });

  it('gives ASCII text the same words on its fast path as on the Unicode path', () => {
    // A trailing non-ASCII word sends the same text down the Unicode path.
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 80 }), (s) => {
        expect(words(s)).toEqual(words(`${s} \u00e9`).slice(0, -1));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('archive ids', () => {
  it('decode to what was encoded, with one cipher reused for many ids', () => {
    const codec = new IdCodec(Buffer.alloc(16, 7));
    const seen = new Set<string>();
    for (let seq = 1; seq < 500; seq++) {
      const id = codec.encode(seq, seq * 7919);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      expect(codec.decode(id)).toEqual({ seq, nonce: seq * 7919 });
    }
    expect(codec.decode('a'.repeat(26))).toBeUndefined();
  });

  it('made in runs are the ids made one at a time', () => {
    const codec = new IdCodec(Buffer.alloc(16, 9));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 48 - 65 }), fc.uint8Array({ minLength: 6 * 64, maxLength: 6 * 64 }), (first, bytes) => {
        const nonces = Buffer.from(bytes);
        const run = codec.encodeRun(first, nonces, 64);
        for (let i = 0; i < 64; i++) {
          const id = run.slice(i * 26, (i + 1) * 26);
          expect(id).toBe(codec.encode(first + i, nonces.readUIntBE(i * 6, 6)));
          expect(codec.decode(id)).toEqual({ seq: first + i, nonce: nonces.readUIntBE(i * 6, 6) });
        }
      }),
      { numRuns: 200 },
    );
  });
});
