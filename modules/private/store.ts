import type { Database } from '../../src';

/**
 * Private XML by account (bare JID) and namespace. XEP-0049 addresses stored data by its
 * namespace, and a set may carry several elements of one namespace, so each row holds the
 * serialised elements of one namespace, in the order the client sent them.
 */
export interface PrivateStore {
  get(account: string, namespace: string): Promise<string | undefined>;
  /** Replaces the data of each given namespace, all in one transaction. */
  put(account: string, entries: ReadonlyMap<string, string>): Promise<void>;
  removeAccount(account: string): Promise<void>;
}

export const PRIVATE_MIGRATIONS = [
  `CREATE TABLE private_xml (
     account TEXT NOT NULL,
     namespace TEXT NOT NULL,
     xml TEXT NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (account, namespace)) STRICT`,
];

export class SqlitePrivateStore implements PrivateStore {
  private readonly stmts;
  private readonly putAll: (account: string, entries: ReadonlyMap<string, string>) => void;

  constructor(db: Database) {
    this.stmts = {
      get: db.prepare('SELECT xml FROM private_xml WHERE account = ? AND namespace = ?').pluck(),
      put: db.prepare(`INSERT INTO private_xml (account, namespace, xml, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (account, namespace) DO UPDATE SET xml = excluded.xml, updated_at = excluded.updated_at`),
      removeAccount: db.prepare('DELETE FROM private_xml WHERE account = ?'),
    };
    this.putAll = db.transaction((account: string, entries: ReadonlyMap<string, string>) => {
      const now = Date.now();
      for (const [namespace, xml] of entries) this.stmts.put.run(account, namespace, xml, now);
    });
  }

  async get(account: string, namespace: string): Promise<string | undefined> {
    return this.stmts.get.get(account, namespace) as string | undefined;
  }

  async put(account: string, entries: ReadonlyMap<string, string>): Promise<void> {
    this.putAll(account, entries);
  }

  async removeAccount(account: string): Promise<void> {
    this.stmts.removeAccount.run(account);
  }
}
