// One archive row per message between two accounts, seen by both archives under ids of their
// own: paging, conversations, resources, full text, lookup by id and deletion of one side.
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
});
