import fc from 'fast-check';
import { ArchiveBatch, readBatch, readUint48, writeUint48 } from '../../modules/mam/batch';
import { x } from '../../src/xml/element';
import type { NewArchiveEntry } from '../../modules/mam/store';

describe('packed archive batches', () => {
  it('read back every message as added, in order, across growth and reuse', () => {
    // Strings of a small pool too, so that most are written once and then referred to.
    const jid = fc.oneof(fc.constantFrom('a@example.com', 'b@example.com', 'grüße@例え.jp'), fc.string({ minLength: 1, maxLength: 40 }));
    const entry = fc.record({
      owner: jid,
      withBare: fc.oneof(jid, fc.constant('')),
      withResource: fc.oneof(fc.constantFrom('', 'phone', 'laptop 😀'), fc.string({ unit: 'grapheme', maxLength: 20 })),
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

describe('integers in packed batches', () => {
  it('read back as written, 48 bits', () => {
    const b = new Uint8Array(10);
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.integer({ min: 0, max: 4 }), (v, o) => {
      writeUint48(b, o, v);
      expect(readUint48(b, o)).toBe(v);
      expect(Buffer.from(b).readUIntBE(o, 6)).toBe(v); // big-endian, as Buffer has it
    }));
  });

  it('keep whole milliseconds of a time, within what 48 bits hold', () => {
    const batch = new ArchiveBatch(256);
    const at = (ts: number): NewArchiveEntry => ({ owner: 'a@example.com', withBare: 'b@example.com', withResource: '', direction: 'in', ts, xml: '<m/>' });
    [1_700_000_000_123.9, -5, 2 ** 50, 0].forEach((ts, i) => batch.add(i + 1, 0, at(ts)));
    expect([...readBatch(batch.take())].map((r) => r.entry.ts)).toEqual([1_700_000_000_123, 0, 2 ** 48 - 1, 0]);
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

describe('packed archive batches taking the XML written for delivery', () => {
  const out = (xml: NewArchiveEntry['xml']): NewArchiveEntry =>
    ({ owner: 'a@example.com', withBare: 'b@example.com', withResource: '', direction: 'out', ts: 5, xml });
  const back = (xml: NewArchiveEntry['xml']): NewArchiveEntry =>
    ({ owner: 'b@example.com', withBare: 'a@example.com', withResource: 'phone', direction: 'in', ts: 6, xml });
  let n = 0;
  const ids = { seq: 0, nonce: 0, next() { this.seq = ++n; this.nonce = 100 + n; return `id${n}`; }, pair() { this.nonce = 200 + this.seq; return `pair${this.seq}`; } };
  const xmlOf = (batch: ArchiveBatch): string[] => [...readBatch(batch.take())].map((r) => r.entry.xml.toString());

  it('archive the message as delivered, without what was added after it was archived', () => {
    const batch = new ArchiveBatch(64);
    const m = x('message', { to: 'b@example.com', type: 'chat' }, x('body', null, 'hi & bye'));
    batch.append(ids, out(m));
    batch.append(ids, back(m));
    m.children.push(x('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'pair', by: 'b@example.com' }));
    m.attrs.xmlns = 'jabber:client'; // as the WebSocket transport does before writing
    const delivered = m.toString();
    expect(delivered).toContain('<stanza-id');
    expect(m.toString()).toBe(delivered); // a second delivery: the same, and not archived twice
    const [record, ...rest] = [...readBatch(batch.take())];
    expect(rest).toEqual([]);
    expect(record!.pair).toEqual({ nonce: expect.any(Number), withResource: 'phone' });
    expect(record!.entry.xml.toString()).toBe('<message to="b@example.com" type="chat" xmlns="jabber:client"><body>hi &amp; bye</body></message>');
  });

  it('serialise the message as archived when it is not delivered first, or was changed', () => {
    const batch = new ArchiveBatch(64);
    const a = x('message', { to: 'b@example.com' }, x('body', null, 'one'));
    batch.append(ids, out(a));
    a.children.push(x('stanza-id', { id: 'x' })); // never delivered: taken as it was
    const b = x('message', { to: 'b@example.com' }, x('body', null, 'two'), x('private', { xmlns: 'urn:xmpp:carbons:2' }));
    batch.append(ids, out(b));
    b.children = b.children.slice(0, 1); // a hook took <private/> out: the delivery is not used
    b.children[0] = 'x'; // (the array it was archived with is what is written)
    expect(b.toString()).toBe('<message to="b@example.com">x</message>');
    const c = x('message', { to: 'b@example.com' });
    batch.append(ids, out(c));
    expect(c.toString()).toBe('<message to="b@example.com"/>');
    const d = x('message', { to: 'b@example.com' });
    batch.append(ids, out(d));
    d.children.push(x('stanza-id', { id: 'y' }));
    expect(d.toString()).toBe('<message to="b@example.com"><stanza-id id="y"/></message>');
    expect(xmlOf(batch)).toEqual([
      '<message to="b@example.com"><body>one</body></message>',
      '<message to="b@example.com"><body>two</body><private xmlns="urn:xmpp:carbons:2"/></message>',
      '<message to="b@example.com"/>',
      '<message to="b@example.com"></message>',
    ]);
    // Serialised after the batch was taken: nothing more is written to it.
    expect(a.toString()).toContain('stanza-id');
    expect(batch.bytes).toBe(0);
  });

  it('make room for the children archived when the element has fewer now', () => {
    const batch = new ArchiveBatch(16);
    const long = 'ü'.repeat(3000);
    const m = x('message', { to: 'b@example.com' }, x('body', null, long), x('thread', null, long));
    batch.append(ids, out(m));
    m.children = [];
    expect(xmlOf(batch)).toEqual([`<message to="b@example.com"><body>${long}</body><thread>${long}</thread></message>`]);
  });

  it('do not pair a message whose XML is already written', () => {
    const batch = new ArchiveBatch(64);
    const m = x('message', { to: 'b@example.com' }, x('body', null, 'hi'));
    batch.append(ids, out(m));
    void m.toString(); // written (sent elsewhere) before the recipient's side came
    expect(batch.pairs(back(m))).toBe(false);
    batch.append(ids, back(m));
    const read = [...readBatch(batch.take())];
    expect(read.map((r) => [r.entry.direction, r.entry.xml.toString(), r.pair])).toEqual([
      ['out', '<message to="b@example.com"><body>hi</body></message>', undefined],
      ['in', '<message to="b@example.com"><body>hi</body></message>', undefined],
    ]);
  });
});

describe('strings in a batch', () => {
  it('are written out once and referred to after, also past the number a batch can refer to', () => {
    const batch = new ArchiveBatch(1024);
    const many = 40_000; // more distinct strings than 15-bit references reach
    const entries: NewArchiveEntry[] = [];
    for (let i = 0; i < many; i++) {
      entries.push({ owner: `u${i}@example.com`, withBare: 'peer@example.com', withResource: i % 2 ? 'phone' : '', direction: 'out', ts: i, xml: `<m${i}/>` });
    }
    // Then owners again: the first (a reference), those numbered around the last number a
    // reference holds (0x7fff), and the last (written out again).
    for (const i of [0, ...Array.from({ length: 16 }, (_, k) => 32_760 + k), many - 1]) entries.push({ ...entries[i]!, ts: entries.length });
    entries.forEach((e, i) => batch.add(i + 1, i, e));
    const data = batch.take();
    const back = [...readBatch(data)].map((r) => r.entry);
    expect(back.map((e) => [e.owner, e.withBare, e.withResource, e.ts, e.xml.toString()]))
      .toEqual(entries.map((e) => [e.owner, e.withBare, e.withResource, e.ts, e.xml]));
    // "peer@example.com" and "phone" once each, not 40 000 times.
    expect(Buffer.from(data).toString('latin1').split('peer@example.com').length - 1).toBe(1);
    expect(Buffer.from(data).toString('latin1').split('phone').length - 1).toBe(1);
    // A batch taken starts its own numbering.
    batch.add(1, 1, entries[1]!);
    expect([...readBatch(batch.take())].map((r) => r.entry.owner)).toEqual(['u1@example.com']);
  });
});
