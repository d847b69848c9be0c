import type { Database } from '../../src';

export interface StoredMessage {
  id: number;
  /** The message as stored, delay element included. */
  xml: string;
  /** When it was stored, in ms since the epoch. */
  stamp: number;
}

/**
 * Offline messages per account (bare JID), oldest first. Async so that a network database
 * can implement it; the SQLite one has committed a message when `store` resolves.
 */
export interface OfflineStore {
  store(jid: string, xml: string, stamp: number): Promise<void>;
  count(jid: string): Promise<number>;
  /** All of the account's messages in the order they were stored. */
  fetch(jid: string): Promise<StoredMessage[]>;
  /** Removes the given messages, all in one transaction. */
  delete(jid: string, ids: readonly number[]): Promise<void>;
  deleteAll(jid: string): Promise<void>;
}

export const OFFLINE_MIGRATIONS = [
  // INTEGER PRIMARY KEY: a new id is always above every existing one, so id order is arrival order.
  `CREATE TABLE offline_message (
     id INTEGER PRIMARY KEY,
     jid TEXT NOT NULL,
     stamp INTEGER NOT NULL,
     xml TEXT NOT NULL) STRICT;
   CREATE INDEX offline_message_jid ON offline_message (jid, id);`,
];

export class SqliteOfflineStore implements OfflineStore {
  private readonly stmts;
  private readonly deleteMany: (jid: string, ids: readonly number[]) => void;

  constructor(db: Database) {
    this.stmts = {
      insert: db.prepare('INSERT INTO offline_message (jid, stamp, xml) VALUES (?, ?, ?)'),
      count: db.prepare('SELECT COUNT(*) FROM offline_message WHERE jid = ?').pluck(),
      fetch: db.prepare('SELECT id, xml, stamp FROM offline_message WHERE jid = ? ORDER BY id'),
      deleteOne: db.prepare('DELETE FROM offline_message WHERE jid = ? AND id = ?'),
      deleteAll: db.prepare('DELETE FROM offline_message WHERE jid = ?'),
    };
    this.deleteMany = db.transaction((jid: string, ids: readonly number[]) => {
      for (const id of ids) this.stmts.deleteOne.run(jid, id);
    });
  }

  async store(jid: string, xml: string, stamp: number): Promise<void> {
    this.stmts.insert.run(jid, stamp, xml);
  }

  async count(jid: string): Promise<number> {
    return this.stmts.count.get(jid) as number;
  }

  async fetch(jid: string): Promise<StoredMessage[]> {
    return this.stmts.fetch.all(jid) as StoredMessage[];
  }

  async delete(jid: string, ids: readonly number[]): Promise<void> {
    if (ids.length > 0) this.deleteMany(jid, ids);
  }

  async deleteAll(jid: string): Promise<void> {
    this.stmts.deleteAll.run(jid);
  }
}
