// One archive row per message between two accounts, seen by both archives under ids of their
// own: paging, conversations, resources, full text, lookup by id, deletion of one side, and
// time bounds found along the sequence.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import type { Database } from '../../src';
import { x } from '../../src/xml/element';
import { archivedText } from '../../modules/mam';
import { IdAllocator, IdCodec, MAM_MIGRATIONS, SqliteMamStore, type NewArchiveEntry } from '../../modules/mam/store';
import { ArchiveBatch } from '../../modules/mam/batch';

const ALICE = 'alice@a.test';
const BOB = 'bob@a.test';
const CAROL = 'carol@c.test';

describe('archive rows shared by sender and recipient', () => {
  let dir: string;
  let db: Database;
  let store: SqliteMamStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-rows-'));
    db = openDatabase(join(dir, 'archive.sqlite'));
    migrate(db, 'mam', MAM_MIGRATIONS);
    store = new SqliteMamStore(db, archivedText, (err) => { throw err; });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A message from one account to another, archived as the server does: sender first, then recipient. */
  const send = (from: string, fromResource: string, to: string, toResource: string, body: string, ts: number): [string, string] => {
    const el = x('message', { from: `${from}/${fromResource}`, to, type: 'chat' }, x('body', null, body));
    const out: NewArchiveEntry = { owner: from, withBare: to, withResource: toResource, direction: 'out', ts, xml: el };
    const sent = store.append(out);
    const received = store.append({ owner: to, withBare: from, withResource: fromResource, direction: 'in', ts, xml: el });
    return [sent, received];
  };
  const rows = (): number => db.prepare('SELECT count(*) FROM mam_row').pluck().get() as number;
  const ids = async (owner: string, extra: object = {}): Promise<string[]> =>
    (await store.page({ owner, ...extra }, { backward: false, limit: 100 })).map((m) => m.id);

  it('stores a message between two accounts once, under a different id in each archive', async () => {
    const [a1, b1] = send(ALICE, 'phone', BOB, '', 'hello bob', 1000);
    const [b2, a2] = send(BOB, 'pc', ALICE, '', 'hi alice', 2000);
    // To a JID with no account here: the sender's archive alone.
    const a3 = store.append({ owner: ALICE, withBare: CAROL, withResource: '', direction: 'out', ts: 3000, xml: '<message><body>carol?</body></message>' });
    await store.flush();
    expect(rows()).toBe(3);
    expect(new Set([a1, b1, b2, a2, a3]).size).toBe(5);
    expect(await ids(ALICE)).toEqual([a1, a2, a3]);
    expect(await ids(BOB)).toEqual([b1, b2]);
    expect(await ids(CAROL)).toEqual([]);
    // Newest first, across both sides of an archive.
    expect((await store.page({ owner: ALICE }, { backward: true, limit: 2 })).map((m) => m.id)).toEqual([a3, a2]);
    expect((await store.page({ owner: ALICE }, { backward: true, limit: 2, offset: 1 })).map((m) => m.id)).toEqual([a2, a1]);
    expect(await store.count({ owner: ALICE }, 100)).toBe(3);
    expect(await store.count({ owner: ALICE }, 2)).toBeUndefined();
    // A conversation, and the other side's resource in it.
    expect(await ids(ALICE, { withBare: BOB })).toEqual([a1, a2]);
    expect(await ids(ALICE, { withBare: BOB, withResource: 'pc' })).toEqual([a2]);
    expect(await ids(BOB, { withBare: ALICE, withResource: 'phone' })).toEqual([b1]);
    expect(await ids(BOB, { withBare: CAROL })).toEqual([]);
    // Ids are the archive's own: each finds its message in its archive only.
    const a1At = await store.locate(ALICE, a1);
    expect(a1At).toEqual({ seq: expect.any(Number), ts: 1000 });
    expect(await store.locate(BOB, b1)).toEqual(a1At);
    expect(await store.locate(BOB, a1)).toBeUndefined();
    expect(await store.locate(ALICE, b1)).toBeUndefined();
    expect(await ids(BOB, { after: a1At })).toEqual([b2]);
    const bounds = await store.bounds(BOB);
    expect([bounds?.first.id, bounds?.last.id]).toEqual([b1, b2]);
  });

  it('writes the rows of one transaction many to a statement, each with its own sides', async () => {
    // 37 messages in one flush: two full multi-row statements and five rows alone. Messages
    // alternate direction and resources; every third goes to a JID with no account here.
    const sent: { owner: string; peer: string; id: string; body: string; resource: string }[] = [];
    for (let i = 0; i < 37; i++) {
      const [from, to] = i % 2 === 0 ? [ALICE, BOB] : [BOB, ALICE];
      const body = `message ${i}`;
      if (i % 3 === 2) {
        const id = store.append({ owner: from, withBare: CAROL, withResource: `c${i}`, direction: 'out', ts: 1000 + i, xml: `<message><body>${body}</body></message>` });
        sent.push({ owner: from, peer: CAROL, id, body, resource: `c${i}` });
        continue;
      }
      const [out, received] = send(from, `r${i}`, to, `t${i}`, body, 1000 + i);
      sent.push({ owner: from, peer: to, id: out, body, resource: `t${i}` }, { owner: to, peer: from, id: received, body, resource: `r${i}` });
    }
    await store.flush();
    expect(rows()).toBe(37);
    for (const owner of [ALICE, BOB]) {
      const mine = sent.filter((s) => s.owner === owner);
      const page = await store.page({ owner }, { backward: false, limit: 100 });
      expect(page.map((m) => m.id)).toEqual(mine.map((s) => s.id));
      expect(page.map((m) => /<body>(.*)<\/body>/.exec(m.xml)![1])).toEqual(mine.map((s) => s.body));
      expect(page.map((m) => m.ts)).toEqual([...page.map((m) => m.ts)].sort((a, b) => a - b));
      // Each row's "with" resource, per side: found by a conversation filter on it.
      for (const s of mine) expect(await ids(owner, { withBare: s.peer, withResource: s.resource })).toEqual([s.id]);
    }
  });

  it('writes handed-over batches as they come and commits them together; a failed write loses that transaction only', async () => {
    const lost: number[] = [];
    const written: number[] = [];
    const worker = new SqliteMamStore(db, archivedText, (_err, n) => lost.push(n), (n) => written.push(n), { ms: 60_000, count: 1_000_000 });
    const packed = (ids: IdAllocator, bodies: string[]): [Uint8Array, number] => {
      const batch = new ArchiveBatch();
      for (const body of bodies) {
        const el = x('message', { from: `${ALICE}/phone`, to: BOB, type: 'chat' }, x('body', null, body));
        batch.append(ids, { owner: ALICE, withBare: BOB, withResource: '', direction: 'out', ts: 1000, xml: el });
        batch.append(ids, { owner: BOB, withBare: ALICE, withResource: 'phone', direction: 'in', ts: 1000, xml: el });
      }
      const count = batch.count;
      return [batch.take(), count];
    };
    const bodies = async (owner: string): Promise<string[]> =>
      (await worker.page({ owner }, { backward: false, limit: 100 })).map((m) => /<body>(.*)<\/body>/.exec(m.xml)![1]!);
    const ids = new IdAllocator(new IdCodec(worker.key), worker.firstFreeSeq());
    const [a, na] = packed(ids, ['one', 'two']);
    const [b, nb] = packed(ids, ['three']);
    worker.enqueueBatch(a, na);
    worker.enqueueBatch(b, nb);
    expect(written).toEqual([]); // not committed yet
    expect(await bodies(BOB)).toEqual(['one', 'two', 'three']); // a read commits first
    expect(written).toEqual([na + nb]);
    // Sequence numbers already written: the batch's rows cannot go in, and its transaction,
    // with the batch before it, is reported lost; the next transaction is written as usual.
    const [c, nc] = packed(ids, ['four']);
    const [dup, nd] = packed(new IdAllocator(new IdCodec(worker.key), 1), ['again']);
    worker.enqueueBatch(c, nc);
    worker.enqueueBatch(dup, nd);
    await worker.flush();
    expect(lost).toEqual([nc + nd]);
    const [e, ne] = packed(ids, ['five']);
    worker.enqueueBatch(e, ne);
    expect(await bodies(ALICE)).toEqual(['one', 'two', 'three', 'five']);
    expect(await bodies(BOB)).toEqual(['one', 'two', 'three', 'five']);
    expect(written).toEqual([na + nb, nc + nd, ne]);
    expect(rows()).toBe(4);
    // An empty hand-over leaves no transaction open.
    worker.enqueueBatch(new ArchiveBatch().take(), 0);
    await worker.flush();
    expect(db.inTransaction).toBe(false);
  });

  it('keeps a message of an account to itself once, when both of its sides are archived', async () => {
    const [sent, received] = send(ALICE, 'phone', ALICE, 'laptop', 'note to self', 1000);
    await store.flush();
    expect(rows()).toBe(1);
    expect(await ids(ALICE)).toEqual([sent]);
    expect(await ids(ALICE, { withBare: ALICE })).toEqual([sent]);
    expect(await store.count({ owner: ALICE }, 10)).toBe(1);
    expect(await store.locate(ALICE, received)).toEqual(await store.locate(ALICE, sent));
    await store.removeOwner(ALICE);
    expect(rows()).toBe(0);
  });

  it('gives back the XML as archived, in any script', async () => {
    const body = 'grüße, 雪 ☃ 𝄞 & <tags>';
    send(ALICE, 'phone', BOB, '', body, 1000);
    const [bob] = await store.page({ owner: BOB }, { backward: false, limit: 10 });
    expect(bob!.xml).toBe(`<message from="${ALICE}/phone" to="${BOB}" type="chat"><body>grüße, 雪 ☃ 𝄞 &amp; &lt;tags&gt;</body></message>`);
    expect(db.prepare('SELECT typeof(xml) FROM mam_row').pluck().get()).toBe('text');
    expect(await ids(BOB, { text: '雪' })).toHaveLength(1);
  });

  it('searches each archive in its own words, and deletes one side without the other', async () => {
    const [a1, b1] = send(ALICE, 'phone', BOB, '', 'apples and pears', 1000);
    const [b2, a2] = send(BOB, 'pc', ALICE, '', 'pears only', 2000);
    expect(await ids(ALICE, { text: 'pears' })).toEqual([a1, a2]);
    expect(await ids(BOB, { text: 'apples' })).toEqual([b1]);
    expect(await ids(BOB, { text: 'pears', withBare: ALICE })).toEqual([b1, b2]);
    expect(await store.count({ owner: BOB, text: 'pears' }, 10)).toBe(2);
    expect(db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(4);

    await store.removeOwner(ALICE);
    expect(await ids(ALICE)).toEqual([]);
    expect(await ids(ALICE, { text: 'pears' })).toEqual([]);
    expect(await ids(BOB)).toEqual([b1, b2]);
    expect(await ids(BOB, { text: 'pears' })).toEqual([b1, b2]);
    expect(rows()).toBe(2);
    expect(db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(2);
    await store.removeOwner(BOB);
    expect(rows()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(0);
  });

  it('keeps each archive in time order when the clock goes back, and expires whole rows', async () => {
    send(ALICE, 'phone', BOB, '', 'one', 5000);
    const [, a2] = send(BOB, 'pc', ALICE, '', 'two', 1000); // the clock stepped back
    await store.flush();
    expect((await store.page({ owner: ALICE }, { backward: false, limit: 10 })).map((m) => m.ts)).toEqual([5000, 5000]);
    expect(await store.expire(5001, 10)).toBe(2);
    expect(rows()).toBe(0);
    expect(await store.locate(ALICE, a2)).toBeUndefined();
    expect(await store.count({ owner: ALICE }, 10)).toBe(0);
    expect(db.prepare('SELECT count(*) FROM mam_span').pluck().get()).toBe(0);
    // Expiring part of a transaction's messages: its spans stay, without the expired ones.
    send(ALICE, 'phone', BOB, '', 'three', 6000);
    send(ALICE, 'phone', BOB, '', 'four', 7000);
    await store.flush();
    expect(await store.expire(6500, 10)).toBe(1);
    expect(await store.count({ owner: BOB }, 10)).toBe(1);
    expect(await store.count({ owner: BOB, withBare: ALICE }, 10)).toBe(1);
    expect((await store.bounds(ALICE))?.first.ts).toBe(7000);
  });

  it('reads archives and conversations across many spans, from any point, both ways', async () => {
    // 120 transactions of 1-6 messages among three accounts, two resources each.
    const people = [ALICE, BOB, CAROL];
    const archives = new Map<string, { id: string; peer: string; peerResource: string }[]>(people.map((p) => [p, []]));
    let r = 7;
    const next = (n: number): number => Math.floor((r = (r * 1103515245 + 12345) % 2147483648) / 65536) % n;
    for (let t = 0; t < 120; t++) {
      for (let k = 1 + next(6); k > 0; k--) {
        const from = people[next(3)]!;
        const to = people[(people.indexOf(from) + 1 + next(2)) % 3]!;
        const [fromRes, toRes] = [`r${next(2)}`, `r${next(2)}`];
        const [sent, received] = send(from, fromRes, to, toRes, `t${t}`, 1000 * t);
        archives.get(from)!.push({ id: sent, peer: to, peerResource: toRes });
        archives.get(to)!.push({ id: received, peer: from, peerResource: fromRes });
      }
      await store.flush();
    }
    expect(db.prepare('SELECT count(*) FROM mam_span').pluck().get()).toBeGreaterThan(3 * 120);
    for (const [i, owner] of people.entries()) {
      const all = archives.get(owner)!;
      for (const filter of [{}, { withBare: people[(i + 1) % 3] }, { withBare: people[(i + 2) % 3], withResource: 'r1' }]) {
        const expected = all.filter((m) => (!('withBare' in filter) || m.peer === filter.withBare)
          && (!('withResource' in filter) || m.peerResource === filter.withResource)).map((m) => m.id);
        expect(await ids(owner, { ...filter })).toEqual(expected.slice(0, 100));
        expect(expected.length).toBeGreaterThan(20);
        expect(await store.count({ owner, ...filter }, 10_000)).toBe(expected.length);
        expect(await store.count({ owner, ...filter }, expected.length - 1)).toBeUndefined();
        // Forward and backward in pages of 7, each from the cursor of the page before.
        const inPages = async (backward: boolean): Promise<string[]> => {
          const out: string[] = [];
          for (let from; ;) {
            const page = await store.page({ owner, ...filter, [backward ? 'before' : 'after']: from }, { backward, limit: 7 });
            out.push(...page.map((m) => m.id));
            if (page.length < 7) return out;
            from = await store.locate(owner, page[6]!.id);
          }
        };
        expect(await inPages(false)).toEqual(expected);
        expect(await inPages(true)).toEqual([...expected].reverse());
        expect((await store.page({ owner, ...filter }, { backward: true, limit: 1000 })).map((m) => m.id)).toEqual([...expected].reverse());
        // An offset, and a window between two cursors.
        expect((await store.page({ owner, ...filter }, { backward: true, limit: 5, offset: 11 })).map((m) => m.id))
          .toEqual([...expected].reverse().slice(11, 16));
        const [a, b] = [expected[3]!, expected[expected.length - 4]!];
        expect((await store.page({ owner, ...filter, after: await store.locate(owner, a), before: await store.locate(owner, b) }, { backward: false, limit: 1000 })).map((m) => m.id))
          .toEqual(expected.slice(4, expected.length - 4));
        for (const k of [1, 5, 17, expected.length - 2]) {
          const at = await store.locate(owner, expected[k]!);
          expect(await store.count({ owner, ...filter }, 10_000, at)).toBe(k);
          expect(await store.count({ owner, ...filter, after: at }, 10_000)).toBe(expected.length - k - 1);
          expect(await store.count({ owner, ...filter, after: await store.locate(owner, a), before: at }, 10_000)).toBe(Math.max(0, k - 4));
        }
      }
    }
  });

  it('keeps time order across archives, and finds time bounds between deleted rows', async () => {
    // Carol's message is stamped earlier than Alice's before it: it takes Alice's time.
    store.append({ owner: ALICE, withBare: CAROL, withResource: '', direction: 'out', ts: 5000, xml: '<message><body>a</body></message>' });
    store.append({ owner: CAROL, withBare: ALICE, withResource: '', direction: 'in', ts: 4000, xml: '<message><body>c</body></message>' });
    await store.flush();
    expect(db.prepare('SELECT ts FROM mam_row ORDER BY seq').pluck().all()).toEqual([5000, 5000]);

    // Bob's archive at 10 000 + 1000 i; every third message of it is one Alice deletes later.
    const bobIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) bobIds.push(send(ALICE, 'phone', BOB, '', `m${i}`, 10_000 + 1000 * i)[1]);
      else bobIds.push(store.append({ owner: BOB, withBare: CAROL, withResource: '', direction: 'out', ts: 10_000 + 1000 * i, xml: `<message><body>m${i}</body></message>` }));
    }
    await store.removeOwner(BOB); // every row with Bob alone goes: holes in the sequence
    const kept = bobIds.filter((_, i) => i % 3 === 0);
    const aliceWithBob = async (extra: object): Promise<number[]> =>
      (await store.page({ owner: ALICE, withBare: BOB, ...extra }, { backward: false, limit: 100 })).map((m) => m.ts);
    expect(await aliceWithBob({})).toHaveLength(kept.length);
    expect(await aliceWithBob({ start: 20_500, end: 40_000 })).toEqual([22_000, 25_000, 28_000, 31_000, 34_000, 37_000, 40_000]);
    expect(await aliceWithBob({ start: 21_000, end: 39_999.5 })).toEqual([22_000, 25_000, 28_000, 31_000, 34_000, 37_000]);
    expect(await aliceWithBob({ start: 68_000.5 })).toEqual([]);
    expect(await aliceWithBob({ end: 9_999 })).toEqual([]);
    expect(await aliceWithBob({ end: 10_000 })).toEqual([10_000]);
    expect(await store.count({ owner: ALICE, start: 5000, end: 5000 }, 10)).toBe(1);
    expect(await store.count({ owner: ALICE, start: 40_000 }, 100)).toBe(10);
    expect((await store.page({ owner: ALICE, text: 'm57', start: 13_000 }, { backward: false, limit: 10 })).map((m) => m.ts)).toEqual([67_000]);
    expect((await store.page({ owner: ALICE, text: 'm57', end: 66_999 }, { backward: false, limit: 10 })).map((m) => m.ts)).toEqual([]);
  });
});

describe('archive migrations', () => {
  let dir: string;
  let db: Database;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-migrate-'));
    db = openDatabase(join(dir, 'archive.sqlite'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const insertRows = (rows: [number, number, number, number | null, number, number | null][]): void => {
    const insert = db.prepare(`INSERT INTO mam_row (seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml)
                               VALUES (?, ?, ?, 'r', ?, ?, '', ?, ?)`);
    for (const [seq, ts, from, fromNonce, to, toNonce] of rows) insert.run(seq, ts, from, fromNonce, to, toNonce, `<message><body>m${seq}</body></message>`);
  };

  it('raises timestamps that go back along the sequence', () => {
    migrate(db, 'mam', MAM_MIGRATIONS.slice(0, -2));
    db.exec(`INSERT INTO mam_jid (id, jid) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x');`);
    insertRows([[1, 100, 1, 11, 2, 12], [2, 300, 1, 21, 3, null], [5, 200, 2, 51, 3, 52], [6, 400, 3, 61, 2, 62]]);
    migrate(db, 'mam', MAM_MIGRATIONS);
    expect(db.prepare('SELECT seq, ts FROM mam_row ORDER BY seq').all()).toEqual([
      { seq: 1, ts: 100 }, { seq: 2, ts: 300 }, { seq: 5, ts: 300 }, { seq: 6, ts: 400 },
    ]);
  });

  it('gives the rows written before spans their spans, and drops the indexes', async () => {
    migrate(db, 'mam', MAM_MIGRATIONS.slice(0, -1));
    db.exec(`INSERT INTO mam_jid (id, jid) VALUES (1, '${ALICE}'), (2, '${BOB}'), (3, '${CAROL}');`);
    // Alice and Bob both keep seq 1 and 9000 (chunks apart); Alice alone 2 (to Carol); Bob alone 3 (from Carol); Carol's note to self 4.
    insertRows([[1, 100, 1, 11, 2, 12], [2, 200, 1, 21, 3, null], [3, 300, 3, null, 2, 32], [4, 400, 3, null, 3, 42], [9000, 500, 2, 91, 1, 92]]);
    migrate(db, 'mam', MAM_MIGRATIONS);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mam_row'").pluck().get()).toBe(0);
    const store = new SqliteMamStore(db, archivedText, (err) => { throw err; });
    const bodies = async (owner: string, extra: object = {}, backward = false): Promise<string[]> =>
      (await store.page({ owner, ...extra }, { backward, limit: 100 })).map((m) => /m\d+/.exec(m.xml)![0]);
    expect(await bodies(ALICE)).toEqual(['m1', 'm2', 'm9000']);
    expect(await bodies(ALICE, {}, true)).toEqual(['m9000', 'm2', 'm1']);
    expect(await bodies(BOB)).toEqual(['m1', 'm3', 'm9000']);
    expect(await bodies(CAROL)).toEqual(['m4']);
    expect(await bodies(ALICE, { withBare: BOB })).toEqual(['m1', 'm9000']);
    expect(await bodies(BOB, { withBare: CAROL })).toEqual(['m3']);
    expect(await bodies(CAROL, { withBare: CAROL })).toEqual(['m4']);
    expect(await store.count({ owner: BOB }, 10)).toBe(3);
    const bounds = await store.bounds(BOB);
    expect([bounds?.first.ts, bounds?.last.ts]).toEqual([100, 500]);
  });
});
