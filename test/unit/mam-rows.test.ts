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
import { MAM_MIGRATIONS, SqliteMamStore, type NewArchiveEntry } from '../../modules/mam/store';

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

describe('archive migration to time order across archives', () => {
  it('raises timestamps that go back along the sequence, and indexes without them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-order-'));
    const db = openDatabase(join(dir, 'archive.sqlite'));
    try {
      migrate(db, 'mam', MAM_MIGRATIONS.slice(0, -1));
      db.exec(`INSERT INTO mam_jid (id, jid) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x');
        INSERT INTO mam_row (seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml) VALUES
          (1, 100, 1, '', 11, 2, '', 12, '<message/>'),
          (2, 300, 1, '', 21, 3, '', NULL, '<message/>'),
          (5, 200, 2, '', 51, 3, '', 52, '<message/>'),
          (6, 400, 3, '', 61, 2, '', 62, '<message/>');`);
      migrate(db, 'mam', MAM_MIGRATIONS);
      expect(db.prepare('SELECT seq, ts FROM mam_row ORDER BY seq').all()).toEqual([
        { seq: 1, ts: 100 }, { seq: 2, ts: 300 }, { seq: 5, ts: 300 }, { seq: 6, ts: 400 },
      ]);
      const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mam_row' ORDER BY name").all();
      expect(indexes).toEqual([
        { name: 'mam_row_pair', sql: 'CREATE INDEX mam_row_pair ON mam_row (pair)' },
        { name: 'mam_row_recipient', sql: 'CREATE INDEX mam_row_recipient ON mam_row (to_id) WHERE to_nonce IS NOT NULL' },
        { name: 'mam_row_sender', sql: 'CREATE INDEX mam_row_sender ON mam_row (from_id) WHERE from_nonce IS NOT NULL' },
      ]);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
