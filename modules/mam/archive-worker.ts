// The archive's own thread: it owns the archive database file and runs every read and write
// of it (SqliteMamStore), so that archiving's SQLite work and fsyncs, and long searches, never
// hold up the thread that routes stanzas. Messages arrive packed (batch.ts) under ids the
// routing thread already handed out; calls arrive as { id, method, args } and are answered in
// order, after every message sent before them.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { ARCHIVE_PAGE_SIZE, MAM_MIGRATIONS, SqliteMamStore, type FlushPolicy } from './store';
import { archivedText } from './text';
import type { FromArchiveWorker, ToArchiveWorker } from './worker-store';

const port = parentPort!;
const post = (m: FromArchiveWorker): void => port.postMessage(m);

// Each commit rewrites every page it touched (the rows' last pages, the spans' pages), and a
// commit has a cost of its own: larger transactions pay both for more messages (40 000 rows
// and sides a transaction: 1.86-1.95 µs a message written, against 2.0-2.3 with 20 000).
// Nothing waits for the write (reads write the queue first); a crash loses at most
// WORKER_FLUSH.ms, whatever the count.
const WORKER_FLUSH: FlushPolicy = { ms: 200, count: 40_000 };

const db = openDatabase((workerData as { file: string }).file, { pageSize: ARCHIVE_PAGE_SIZE });
migrate(db, 'mam', MAM_MIGRATIONS);
const store = new SqliteMamStore(
  db,
  archivedText,
  (err, lost) => post({ t: 'lost', count: lost, message: String(err) }),
  // The batches go back to the routing thread, which packs the next messages into them.
  (count, batches) => port.postMessage({ t: 'written', count, batches } satisfies FromArchiveWorker, batches.map((b) => b.buffer as ArrayBuffer)),
  WORKER_FLUSH,
);
post({ t: 'ready', key: store.key, nextSeq: store.firstFreeSeq() });

/** The store's methods that calls may name. */
const CALLS = new Set(['locate', 'page', 'count', 'bounds', 'prefs', 'setPrefs', 'expire', 'removeOwner', 'flush']);

port.on('message', (m: ToArchiveWorker) => {
  switch (m.t) {
    case 'append':
      store.enqueueBatch(m.data, m.count);
      return;
    case 'call': {
      if (!CALLS.has(m.method)) {
        post({ t: 'error', id: m.id, message: `archive: no such call ${m.method}` });
        return;
      }
      const method = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[m.method]!;
      method.apply(store, m.args).then(
        (value) => post({ t: 'result', id: m.id, value }),
        (err: unknown) => post({ t: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    case 'close':
      store.flushNow();
      db.close();
      post({ t: 'closed' });
      port.close();
      return;
  }
});
