import type { Database } from '../../src';

/** vCards by account (bare JID), stored as the serialised <vCard xmlns='vcard-temp'/> element. */
export interface VcardStore {
  get(account: string): Promise<string | undefined>;
  /** Replaces the account's vCard. */
  put(account: string, xml: string): Promise<void>;
  remove(account: string): Promise<void>;
}

export const VCARD_MIGRATIONS = [
  `CREATE TABLE vcard (
     account TEXT PRIMARY KEY,
     xml TEXT NOT NULL,
     updated_at INTEGER NOT NULL) STRICT`,
];

export class SqliteVcardStore implements VcardStore {
  private readonly stmts;

  constructor(db: Database) {
    this.stmts = {
      get: db.prepare('SELECT xml FROM vcard WHERE account = ?').pluck(),
      put: db.prepare(`INSERT INTO vcard (account, xml, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (account) DO UPDATE SET xml = excluded.xml, updated_at = excluded.updated_at`),
      remove: db.prepare('DELETE FROM vcard WHERE account = ?'),
    };
  }

  async get(account: string): Promise<string | undefined> {
    return this.stmts.get.get(account) as string | undefined;
  }

  async put(account: string, xml: string): Promise<void> {
    this.stmts.put.run(account, xml, Date.now());
  }

  async remove(account: string): Promise<void> {
    this.stmts.remove.run(account);
  }
}
