import type { Database } from '../../src';

/** Blocked JIDs (normalised strings) by account (bare JID). */
export interface BlockingStore {
  /** The account's blocked JIDs, sorted. */
  list(account: string): Promise<string[]>;
  /** Adds JIDs; returns those that were not blocked before. */
  add(account: string, jids: readonly string[]): Promise<string[]>;
  /** Removes JIDs; returns those that were blocked. */
  remove(account: string, jids: readonly string[]): Promise<string[]>;
  /** Removes every JID; returns them, sorted. */
  clear(account: string): Promise<string[]>;
}

export const BLOCKING_MIGRATIONS = [
  `CREATE TABLE blocking_item (
     account TEXT NOT NULL,
     jid TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (account, jid)) STRICT`,
];

export class SqliteBlockingStore implements BlockingStore {
  private readonly stmts;
  private readonly addAll: (account: string, jids: readonly string[]) => string[];
  private readonly removeAll: (account: string, jids: readonly string[]) => string[];
  private readonly clearAll: (account: string) => string[];

  constructor(db: Database) {
    this.stmts = {
      list: db.prepare('SELECT jid FROM blocking_item WHERE account = ? ORDER BY jid').pluck(),
      add: db.prepare('INSERT INTO blocking_item (account, jid, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      remove: db.prepare('DELETE FROM blocking_item WHERE account = ? AND jid = ?'),
      clear: db.prepare('DELETE FROM blocking_item WHERE account = ?'),
    };
    this.addAll = db.transaction((account: string, jids: readonly string[]) => {
      const now = Date.now();
      return jids.filter((jid) => this.stmts.add.run(account, jid, now).changes > 0);
    });
    this.removeAll = db.transaction((account: string, jids: readonly string[]) =>
      jids.filter((jid) => this.stmts.remove.run(account, jid).changes > 0));
    this.clearAll = db.transaction((account: string) => {
      const jids = this.stmts.list.all(account) as string[];
      this.stmts.clear.run(account);
      return jids;
    });
  }

  async list(account: string): Promise<string[]> {
    return this.stmts.list.all(account) as string[];
  }

  async add(account: string, jids: readonly string[]): Promise<string[]> {
    return this.addAll(account, jids);
  }

  async remove(account: string, jids: readonly string[]): Promise<string[]> {
    return this.removeAll(account, jids);
  }

  async clear(account: string): Promise<string[]> {
    return this.clearAll(account);
  }
}
