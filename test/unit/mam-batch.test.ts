import fc from 'fast-check';
import { ArchiveBatch, readBatch } from '../../modules/mam/batch';
import { x } from '../../src/xml/element';
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

describe('packed archive batches of elements', () => {
  const entry = (owner: string, xml: NewArchiveEntry['xml']): NewArchiveEntry =>
    ({ owner, withBare: 'peer@example.com', withResource: 'r', direction: 'in', ts: 1, xml });

  it('serialise an element, once for the records of the same element in a row', () => {
    const a = x('message', { to: 'b@example.com' }, x('body', null, 'one & only'));
    const b = x('message', { to: 'c@example.com' }, x('body', null, 'two'));
    const batch = new ArchiveBatch(64);
    batch.add(1, 0, entry('a@example.com', a));
    batch.add(2, 0, entry('b@example.com', a)); // the recipient's copy of the same message
    const sizeAfterTwo = batch.bytes;
    batch.add(3, 0, entry('c@example.com', b));
    batch.add(4, 0, entry('a@example.com', a)); // not the record before: written again
    batch.add(5, 0, entry('d@example.com', '<message/>'));
    const back = [...readBatch(batch.take())].map((r) => [r.seq, r.entry.owner, r.entry.xml]);
    expect(back).toEqual([
      [1, 'a@example.com', a.toString()],
      [2, 'b@example.com', a.toString()],
      [3, 'c@example.com', b.toString()],
      [4, 'a@example.com', a.toString()],
      [5, 'd@example.com', '<message/>'],
    ]);
    expect(sizeAfterTwo).toBeLessThan(2 * Buffer.byteLength(a.toString()) + 60);
    // Changed in between (a hook took a child out, or added one): written again.
    const c = x('message', { to: 'e@example.com' }, x('body', null, 'three'), x('private', { xmlns: 'urn:xmpp:carbons:2' }));
    batch.add(7, 0, entry('a@example.com', c));
    c.children = c.children.slice(0, 1);
    batch.add(8, 0, entry('e@example.com', c));
    c.children.push(x('thread', null, 't1'));
    batch.add(9, 0, entry('f@example.com', c));
    const changed = [...readBatch(batch.take())].map((r) => r.entry.xml);
    expect(changed).toEqual([
      '<message to="e@example.com"><body>three</body><private xmlns="urn:xmpp:carbons:2"/></message>',
      '<message to="e@example.com"><body>three</body></message>',
      '<message to="e@example.com"><body>three</body><thread>t1</thread></message>',
    ]);
    // A new batch does not refer back to the last one.
    batch.add(6, 0, entry('b@example.com', a));
    expect([...readBatch(batch.take())].map((r) => r.entry.xml)).toEqual([a.toString()]);
  });
});
