// The archive's schema steps applied to a database written by an earlier version, and the move
// of archives into their own file: every message, id, full-text posting and preference must survive.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { archivedText } from '../../modules/mam';
import { IdCodec, MAM_MIGRATIONS, SqliteMamStore } from '../../modules/mam/store';
import { archiveFileFor, WorkerMamStore } from '../../modules/mam/worker-store';

describe('archive schema upgrade to numbered JIDs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-migrate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps messages, ids, full-text postings and preferences', async () => {
    const file = join(dir, 'old.sqlite');
    const old = openDatabase(file);
    migrate(old, 'mam', MAM_MIGRATIONS.slice(0, 2)); // the schema as first shipped
    const key = old.prepare('SELECT key FROM mam_key').pluck().get() as Buffer;
    const insert = old.prepare(`INSERT INTO mam_message (seq, owner, nonce, ts, with_bare, with_resource, direction, xml)
                                VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    const rows: [number, string, number, number, string, string, 'in' | 'out', string][] = [
      [1, 'alice@a.test', 11, 1000, 'bob@b.test', 'phone', 'out', '<message><body>hello bob</body></message>'],
      [2, 'bob@b.test', 12, 1000, 'alice@a.test', 'pc', 'in', '<message><body>hello bob</body></message>'],
      [3, 'alice@a.test', 13, 2000, 'carol@c.test', '', 'in', '<message><body>carol here</body></message>'],
    ];
    for (const r of rows) insert.run(...r);
    // The old full-text rows, as that version wrote them (words tagged with the owner).
    const tag = (o: string) => createHash('sha256').update(o).digest('hex').slice(0, 16);
    const fts = old.prepare('INSERT INTO mam_fts (rowid, words) VALUES (?, ?)');
    fts.run(1, `${tag('alice@a.test')}hello ${tag('alice@a.test')}bob`);
    fts.run(2, `${tag('bob@b.test')}hello ${tag('bob@b.test')}bob`);
    fts.run(3, `${tag('alice@a.test')}carol ${tag('alice@a.test')}here`);
    old.prepare("INSERT INTO mam_prefs VALUES ('alice@a.test', 'roster', '[]', '[\"carol@c.test\"]')").run();
    old.close();

    const db = openDatabase(file);
    migrate(db, 'mam', MAM_MIGRATIONS);
    const store = new SqliteMamStore(db, archivedText, (err) => { throw err; });
    const ids = new IdCodec(key);
    try {
      const alice = await store.page({ owner: 'alice@a.test' }, { backward: false, limit: 10 });
      expect(alice.map((m) => [m.id, m.ts])).toEqual([[ids.encode(1, 11), 1000], [ids.encode(3, 13), 2000]]);
      const withBob = await store.page({ owner: 'alice@a.test', withBare: 'bob@b.test', withResource: 'phone' }, { backward: true, limit: 10 });
      expect(withBob.map((m) => m.xml)).toEqual(['<message><body>hello bob</body></message>']);
      expect(await store.locate('bob@b.test', ids.encode(2, 12))).toEqual({ seq: 2, ts: 1000 });
      expect(await store.locate('alice@a.test', ids.encode(2, 12))).toBeUndefined(); // bob's message, not alice's
      expect((await store.page({ owner: 'alice@a.test', text: 'carol' }, { backward: false, limit: 10 })).map((m) => m.id)).toEqual([ids.encode(3, 13)]);
      expect(await store.prefs('alice@a.test')).toEqual({ default: 'roster', always: [], never: ['carol@c.test'] });
      // New messages continue the sequence after the old ones.
      const id = store.append({ owner: 'bob@b.test', withBare: 'alice@a.test', withResource: '', direction: 'out', ts: 3000, xml: '<message/>' });
      expect(ids.decode(id as string)?.seq).toBe(4);
      expect(await store.count({ owner: 'bob@b.test' }, 100)).toBe(2);
      await store.removeOwner('alice@a.test');
      expect(await store.count({ owner: 'alice@a.test' }, 100)).toBe(0);
      expect(await store.count({ owner: 'bob@b.test' }, 100)).toBe(2);
    } finally {
      db.close();
    }
  });
});

describe('archive moved out of the server database into its own file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-move-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('moves messages, ids and preferences once, searches them, and leaves the server database empty of them', async () => {
    const file = join(dir, 'xmppd.sqlite');
    const main = openDatabase(file);
    migrate(main, 'mam', MAM_MIGRATIONS);
    // Archives as versions before the archive file wrote them: in the server's database.
    const inMain = new SqliteMamStore(main, archivedText, (err) => { throw err; });
    const id1 = inMain.append({ owner: 'alice@a.test', withBare: 'bob@b.test', withResource: 'pc', direction: 'out', ts: 1000, xml: '<message><body>before the move</body></message>' });
    const id2 = inMain.append({ owner: 'bob@b.test', withBare: 'alice@a.test', withResource: 'phone', direction: 'in', ts: 1000, xml: '<message><body>before the move</body></message>' });
    await inMain.setPrefs('alice@a.test', { default: 'roster', always: [], never: ['carol@c.test'] });
    await inMain.page({ owner: 'alice@a.test', text: 'move' }, { backward: false, limit: 10 }); // postings in the old file
    await inMain.close();
    const key = main.prepare('SELECT key FROM mam_key').pluck().get() as Buffer;

    const lost: number[] = [];
    const archiveFile = archiveFileFor(file);
    let store = await WorkerMamStore.open(main, archiveFile, (_err, n) => lost.push(n));
    try {
      expect(main.prepare('SELECT (SELECT count(*) FROM mam_row) + (SELECT count(*) FROM mam_prefs)').pluck().get()).toBe(0);
      const alice = await store.page({ owner: 'alice@a.test' }, { backward: false, limit: 10 });
      expect(alice.map((m) => m.id)).toEqual([id1]);
      expect(await store.locate('bob@b.test', id2 as string)).toBeDefined();
      expect(await store.prefs('alice@a.test')).toEqual({ default: 'roster', always: [], never: ['carol@c.test'] });
      // The full-text index is rebuilt in the new file at the first search.
      expect((await store.page({ owner: 'alice@a.test', text: 'move' }, { backward: false, limit: 10 })).map((m) => m.id)).toEqual([id1]);
      // Ids go on from the old sequence, under the old key.
      const id3 = await store.append({ owner: 'alice@a.test', withBare: 'bob@b.test', withResource: '', direction: 'in', ts: 2000, xml: '<message><body>after</body></message>' });
      expect(new IdCodec(key).decode(id3)?.seq).toBe(3);
      await store.close();
      // Opening again moves nothing twice.
      store = await WorkerMamStore.open(main, archiveFile, (_err, n) => lost.push(n));
      expect(await store.count({ owner: 'alice@a.test' }, 100)).toBe(2);
    } finally {
      await store.close();
      main.close();
    }
    expect(lost).toEqual([]);
  });
});
