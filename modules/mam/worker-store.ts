import { existsSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Database } from '../../src';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { ArchiveBatch } from './batch';
import {
  ARCHIVE_PAGE_SIZE, IdAllocator, IdCodec, MAM_MIGRATIONS,
  type ArchiveFilter, type ArchivePrefs, type ArchivedMessage, type Cursor, type MamStore, type NewArchiveEntry, type PageRequest,
} from './store';

export type ToArchiveWorker =
  | { t: 'append'; data: Uint8Array; count: number }
  | { t: 'call'; id: number; method: string; args: unknown[] }
  | { t: 'close' };

export type FromArchiveWorker =
  | { t: 'ready'; key: Uint8Array; nextSeq: number }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number; message: string }
  | { t: 'lost'; count: number; message: string }
  | { t: 'written'; count: number; batches: Uint8Array[] }
  | { t: 'closed' };

/** Longest a message waits on this thread before it goes to the archive's thread. */
const HANDOFF_MS = 10;
/** Packed bytes that go at once, whatever the time. */
const HANDOFF_BYTES = 192 * 1024;
/**
 * Messages handed out ids but not yet written, beyond which ids come back as promises that
 * resolve once the backlog is down to BACKLOG_RESUME: the archive hooks then hold up the
 * sessions' stanza queues, whose limits pause reading from the sockets. Archiving never falls
 * further behind than this, whatever the load.
 */
export const MAX_BACKLOG = 100_000;
const BACKLOG_RESUME = 50_000;

/** The archive file beside the server's database: xmppd.sqlite → xmppd-archive.sqlite. */
export function archiveFileFor(databaseFile: string): string {
  const ext = extname(databaseFile);
  return `${databaseFile.slice(0, databaseFile.length - ext.length)}-archive${ext}`;
}

/**
 * The archive in its own SQLite file, run by its own thread (archive-worker.ts). This thread
 * hands out archive ids at once (IdAllocator, over the key and sequence the archive's thread
 * reports when it opens) and passes messages on in packed batches; every other call is a
 * message to that thread, answered after the messages sent before it, so a query always sees
 * every message whose id was handed out.
 *
 * Why a second file and thread: archiving is the server's one write-heavy table. Writing it on
 * the routing thread cost more than routing the message (SQLite inserts, the commit's fsync,
 * and garbage collection of queued messages); SQLite allows one writer per file, so in the
 * server's own file the archive's writer would make every other write wait.
 */
export class WorkerMamStore implements MamStore {
  private readonly batch = new ArchiveBatch();
  private handoff: NodeJS.Timeout | undefined;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Messages appended and not yet reported written by the archive's thread. */
  private backlog = 0;
  /** Appends waiting for the backlog to go down. */
  private waiting: (() => void)[] = [];
  private lastCall = 0;
  /** Why the archive's thread stopped, once it has. */
  private stopped: Error | undefined;
  private closing: Promise<void> | undefined;
  private onClosed: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly ids: IdAllocator,
    private readonly onError: (err: unknown, lost: number) => void,
  ) {
    worker.on('message', (m: FromArchiveWorker) => this.receive(m));
    worker.on('error', (err) => this.stop(err));
    worker.on('exit', (code) => this.stop(new Error(`the archive's thread exited (code ${code})`)));
  }

  /**
   * Opens (creating when needed) the archive file and its thread. Archives kept in the
   * server's own database by earlier versions move to the archive file first, once.
   */
  static async open(db: Database, file: string, onError: (err: unknown, lost: number) => void): Promise<WorkerMamStore> {
    moveArchiveOut(db, file);
    const worker = new Worker(workerScript(), { workerData: { file } });
    const ready = await new Promise<{ key: Uint8Array; nextSeq: number }>((resolve, reject) => {
      const onError = (err: Error): void => settle(new Error(`the archive ${file} could not be opened: ${err.message}`));
      const onExit = (code: number): void => onError(new Error(`its thread exited (code ${code})`));
      const onMessage = (m: FromArchiveWorker): void =>
        settle(m.t === 'ready' ? m : new Error(`the archive's thread said ${m.t} before it was ready`));
      const settle = (result: Error | { key: Uint8Array; nextSeq: number }): void => {
        worker.off('error', onError).off('exit', onExit).off('message', onMessage);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      worker.on('error', onError).on('exit', onExit).on('message', onMessage);
    });
    // The thread must not keep a server that is otherwise done from exiting; close() ends it.
    worker.unref();
    return new WorkerMamStore(worker, new IdAllocator(new IdCodec(Buffer.from(ready.key)), ready.nextSeq), onError);
  }

  append(entry: NewArchiveEntry): string | Promise<string> {
    if (this.stopped !== undefined) {
      this.onError(this.stopped, 1);
      return this.ids.next();
    }
    const id = this.batch.append(this.ids, entry);
    this.backlog++;
    if (this.batch.bytes >= HANDOFF_BYTES) this.handOff();
    else this.handoff ??= setTimeout(() => this.handOff(), HANDOFF_MS);
    if (this.backlog <= MAX_BACKLOG) return id;
    this.handOff();
    return new Promise((resolve) => this.waiting.push(() => resolve(id)));
  }


  locate(owner: string, id: string): Promise<Cursor | undefined> {
    return this.call('locate', [owner, id]);
  }

  page(filter: ArchiveFilter, page: PageRequest): Promise<ArchivedMessage[]> {
    return this.call('page', [filter, page]);
  }

  count(filter: ArchiveFilter, cap: number, before?: Cursor): Promise<number | undefined> {
    return this.call('count', [filter, cap, before]);
  }

  bounds(owner: string): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined> {
    return this.call('bounds', [owner]);
  }

  prefs(owner: string): Promise<ArchivePrefs | undefined> {
    return this.call('prefs', [owner]);
  }

  setPrefs(owner: string, prefs: ArchivePrefs): Promise<void> {
    return this.call('setPrefs', [owner, prefs]);
  }

  expire(cutoff: number, limit: number): Promise<number> {
    return this.call('expire', [cutoff, limit]);
  }

  removeOwner(owner: string): Promise<void> {
    return this.call('removeOwner', [owner]);
  }

  flush(): Promise<void> {
    return this.call('flush', []);
  }

  /** Writes what is queued, closes the archive file and ends its thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.stopped === undefined) {
        this.handOff();
        const closed = new Promise<void>((resolve) => (this.onClosed = resolve));
        this.worker.postMessage({ t: 'close' } satisfies ToArchiveWorker);
        await closed;
      }
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private handOff(): void {
    if (this.handoff !== undefined) {
      clearTimeout(this.handoff);
      this.handoff = undefined;
    }
    if (this.batch.count === 0 || this.stopped !== undefined) return;
    const count = this.batch.count;
    const data = this.batch.take();
    this.worker.postMessage({ t: 'append', data, count } satisfies ToArchiveWorker, [data.buffer as ArrayBuffer]);
  }

  private call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    this.handOff(); // the messages before the call are in the archive when it runs
    const id = ++this.lastCall;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ t: 'call', id, method, args } satisfies ToArchiveWorker);
    });
  }

  private receive(m: FromArchiveWorker): void {
    switch (m.t) {
      case 'result':
      case 'error': {
        const call = this.calls.get(m.id);
        if (call === undefined) return;
        this.calls.delete(m.id);
        if (m.t === 'result') call.resolve(m.value);
        else call.reject(new Error(m.message));
        return;
      }
      case 'lost':
        this.onError(new Error(m.message), m.count);
        return;
      case 'written':
        for (const data of m.batches) this.batch.recycle(data);
        this.backlog -= m.count;
        if (this.backlog <= BACKLOG_RESUME) this.release();
        return;
      case 'closed':
        this.stopped = new Error('the archive is closed');
        this.onClosed?.();
        return;
      case 'ready':
        return;
    }
  }

  /** The thread is gone (a bug, or closed): calls waiting for it fail, later ones too. */
  private stop(err: Error): void {
    if (this.stopped === undefined) {
      this.stopped = err;
      const queued = this.batch.count;
      if (queued > 0) this.onError(err, queued);
    }
    for (const call of this.calls.values()) call.reject(this.stopped);
    this.calls.clear();
    this.release();
    this.onClosed?.();
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  }
}

/**
 * The compiled archive-worker.js: beside this file when it runs compiled, or in dist/ when
 * this file runs as TypeScript (the tests), which the build made first.
 */
function workerScript(): string {
  if (__filename.endsWith('.js')) return join(__dirname, 'archive-worker.js');
  const root = resolve(__dirname, '..', '..');
  const script = join(root, 'dist', relative(root, __dirname), 'archive-worker.js');
  if (!existsSync(script)) throw new Error(`${script} is missing: build the project first (npm run build)`);
  return script;
}

/**
 * Versions before the archive file kept archives in the server's database (the same tables,
 * which its migrations still create). Copies them into a new archive file, with the key so
 * that ids already handed out stay valid, then empties them; the full-text index is rebuilt
 * at each archive's next search. Safe to repeat after a crash between the two steps.
 */
function moveArchiveOut(db: Database, file: string): void {
  const count = (sql: string, on: Database = db): number => on.prepare(sql).pluck().get() as number;
  if (count('SELECT (SELECT count(*) FROM mam_row) + (SELECT count(*) FROM mam_prefs)') === 0) return;
  const archive = openDatabase(file, { pageSize: ARCHIVE_PAGE_SIZE });
  try {
    migrate(archive, 'mam', MAM_MIGRATIONS);
    if (count('SELECT (SELECT count(*) FROM mam_row) + (SELECT count(*) FROM mam_prefs)', archive) === 0) {
      archive.prepare('ATTACH DATABASE ? AS old').run(db.name);
      try {
        archive.transaction(() => {
          archive.exec(`DELETE FROM mam_key;
            INSERT INTO mam_key SELECT * FROM old.mam_key;
            INSERT INTO mam_jid SELECT * FROM old.mam_jid;
            INSERT INTO mam_row (seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml)
              SELECT seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml FROM old.mam_row;
            INSERT INTO mam_span SELECT * FROM old.mam_span;
            INSERT INTO mam_prefs SELECT * FROM old.mam_prefs;`);
        })();
      } finally {
        archive.exec('DETACH DATABASE old');
      }
    }
  } finally {
    archive.close();
  }
  db.transaction(() => {
    db.exec(`DELETE FROM mam_row; DELETE FROM mam_span; DELETE FROM mam_jid; DELETE FROM mam_prefs; DELETE FROM mam_fts_done;
      INSERT INTO mam_fts (mam_fts) VALUES ('delete-all');`);
  })();
}
