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
        const back = [...readBatch(batch.take())].map((m) => ({ ...m, entry: { ...m.entry, xml: m.entry.xml.toString() } }));
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
    const back = [...readBatch(batch.take())].map((r) => [r.seq, r.entry.owner, r.entry.xml.toString()]);
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
    const changed = [...readBatch(batch.take())].map((r) => r.entry.xml.toString());
    expect(changed).toEqual([
      '<message to="e@example.com"><body>three</body><private xmlns="urn:xmpp:carbons:2"/></message>',
      '<message to="e@example.com"><body>three</body></message>',
      '<message to="e@example.com"><body>three</body><thread>t1</thread></message>',
    ]);
    // A new batch does not refer back to the last one.
    batch.add(6, 0, entry('b@example.com', a));
    expect([...readBatch(batch.take())].map((r) => r.entry.xml.toString())).toEqual([a.toString()]);
  });
});

describe('packed archive batches of messages between two accounts', () => {
  const out = (xml: NewArchiveEntry['xml']): NewArchiveEntry =>
    ({ owner: 'a@example.com', withBare: 'b@example.com', withResource: '', direction: 'out', ts: 5, xml });
  const back = (xml: NewArchiveEntry['xml'], owner = 'b@example.com', withBare = 'a@example.com'): NewArchiveEntry =>
    ({ owner, withBare, withResource: 'phone', direction: 'in', ts: 6, xml });
  let n = 0;
  const ids = { seq: 0, nonce: 0, next() { this.seq = ++n; this.nonce = 100 + n; return `id${n}`; }, pair() { this.nonce = 200 + this.seq; return `pair${this.seq}`; } };

  it('pack the recipient\'s side into the sender\'s record when it is the same message', () => {
    const batch = new ArchiveBatch(64);
    const m = x('message', { to: 'b@example.com' }, x('body', null, 'hi'));
    expect(batch.append(ids, out(m))).toBe('id1');
    expect(batch.append(ids, back(m))).toBe('pair1');
    expect(batch.append(ids, back(m))).toBe('id2'); // once only
    expect(batch.count).toBe(3);
    const read = [...readBatch(batch.take())].map((r) => ({ ...r, entry: { ...r.entry, xml: r.entry.xml.toString() } }));
    expect(read).toEqual([
      { seq: 1, nonce: 101, entry: { ...out(m), xml: m.toString() }, pair: { nonce: 201, withResource: 'phone' } },
      { seq: 2, nonce: 102, entry: { ...back(m), xml: m.toString() } },
    ]);
  });

  it('do not pair other messages, other parties, changed elements or text', () => {
    const batch = new ArchiveBatch(64);
    const m = x('message', { to: 'b@example.com' }, x('body', null, 'hi'), x('private', { xmlns: 'urn:xmpp:carbons:2' }));
    batch.add(1, 0, out(m));
    expect(batch.pairs(back(x('message')))).toBe(false);
    expect(batch.pairs(back(m, 'c@example.com'))).toBe(false);
    expect(batch.pairs(back(m, 'b@example.com', 'c@example.com'))).toBe(false);
    expect(batch.pairs({ ...back(m), direction: 'out' })).toBe(false);
    expect(batch.pairs(back(m))).toBe(true);
    m.children = m.children.slice(0, 1);
    expect(batch.pairs(back(m))).toBe(false);
    batch.add(2, 0, out('<message/>'));
    expect(batch.pairs(back('<message/>'))).toBe(false);
    batch.add(3, 0, out(m));
    batch.take();
    expect(batch.pairs(back(m))).toBe(false); // a new batch does not refer back
  });
});
