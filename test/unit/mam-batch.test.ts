import fc from 'fast-check';
import { ArchiveBatch, readBatch } from '../../modules/mam/batch';
import type { NewArchiveEntry } from '../../modules/mam/store';

describe('packed archive batches', () => {
  it('read back every message as added, in order, across growth and reuse', () => {
    const entry = fc.record({
      owner: fc.string({ minLength: 1, maxLength: 40 }),
      withBare: fc.string({ maxLength: 40 }),
      withResource: fc.string({ unit: 'grapheme', maxLength: 20 }),
      direction: fc.constantFrom('in' as const, 'out' as const),
      ts: fc.integer({ min: 0, max: 2 ** 45 }),
      xml: fc.string({ unit: 'grapheme', maxLength: 3000 }),
    });
    const batch = new ArchiveBatch(1024); // small, so that big messages make it grow
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 2 ** 48 - 1 }), fc.integer({ min: 0, max: 2 ** 48 - 1 }), entry), { maxLength: 30 }), (items) => {
        for (const [seq, nonce, e] of items) batch.add(seq, nonce, e as NewArchiveEntry);
        expect(batch.count).toBe(items.length);
        const back = [...readBatch(batch.take())];
        expect(back).toEqual(items.map(([seq, nonce, e]) => ({ seq, nonce, entry: e })));
        expect(batch.count).toBe(0);
        expect(batch.bytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
