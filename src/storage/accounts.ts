import type { Database } from './database';
import { migrate, type Migration } from './migrate';
import type { ScramCredentials, ScramHash } from '../sasl';

/**
 * Accounts and their SCRAM keys (RFC 5802 §3: salt, iteration count, StoredKey, ServerKey)
 * per hash. The password itself is never stored. Async so that a network database can
 * implement the same interface.
 */
export interface AccountStore {
  exists(bareJid: string): Promise<boolean>;
  /** False when the account already exists. */
  create(bareJid: string, credentials: ReadonlyMap<ScramHash, ScramCredentials>): Promise<boolean>;
  /** False when there is no such account. */
  setCredentials(bareJid: string, credentials: ReadonlyMap<ScramHash, ScramCredentials>): Promise<boolean>;
  credentials(bareJid: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
  /** False when there was no such account. */
  delete(bareJid: string): Promise<boolean>;
  /** Bare JIDs, sorted; only those of `domain` when given. */
  list(domain?: string): Promise<string[]>;
}

const MIGRATIONS: Migration[] = [
  `CREATE TABLE account (
     jid TEXT PRIMARY KEY,
     domain TEXT NOT NULL,
     created_at INTEGER NOT NULL) STRICT;
   CREATE INDEX account_domain ON account (domain);
   CREATE TABLE account_scram (
     jid TEXT NOT NULL REFERENCES account (jid) ON DELETE CASCADE,
     hash TEXT NOT NULL,
     salt BLOB NOT NULL,
     iterations INTEGER NOT NULL,
     stored_key BLOB NOT NULL,
     server_key BLOB NOT NULL,
     PRIMARY KEY (jid, hash)) STRICT;`,
];

interface ScramRow { salt: Buffer; iterations: number; stored_key: Buffer; server_key: Buffer }

export class SqliteAccountStore implements AccountStore {
  private readonly stmts;

  constructor(private readonly db: Database) {
    migrate(db, 'core.accounts', MIGRATIONS);
    this.stmts = {
      exists: db.prepare('SELECT 1 FROM account WHERE jid = ?').pluck(),
      insert: db.prepare('INSERT INTO account (jid, domain, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      putScram: db.prepare(`INSERT INTO account_scram (jid, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (jid, hash) DO UPDATE SET salt = excluded.salt, iterations = excluded.iterations,
        stored_key = excluded.stored_key, server_key = excluded.server_key`),
      getScram: db.prepare('SELECT salt, iterations, stored_key, server_key FROM account_scram WHERE jid = ? AND hash = ?'),
      delete: db.prepare('DELETE FROM account WHERE jid = ?'),
      listAll: db.prepare('SELECT jid FROM account ORDER BY jid').pluck(),
      listDomain: db.prepare('SELECT jid FROM account WHERE domain = ? ORDER BY jid').pluck(),
    };
  }

  async exists(bareJid: string): Promise<boolean> {
    return this.stmts.exists.get(bareJid) !== undefined;
  }

  async create(bareJid: string, credentials: ReadonlyMap<ScramHash, ScramCredentials>): Promise<boolean> {
    const domain = bareJid.slice(bareJid.indexOf('@') + 1);
    return this.db.transaction(() => {
      if (this.stmts.insert.run(bareJid, domain, Date.now()).changes === 0) return false;
      this.putAll(bareJid, credentials);
      return true;
    })();
  }

  async setCredentials(bareJid: string, credentials: ReadonlyMap<ScramHash, ScramCredentials>): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.stmts.exists.get(bareJid) === undefined) return false;
      this.putAll(bareJid, credentials);
      return true;
    })();
  }

  async credentials(bareJid: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    const row = this.stmts.getScram.get(bareJid, hash) as ScramRow | undefined;
    return row && { salt: row.salt, iterations: row.iterations, storedKey: row.stored_key, serverKey: row.server_key };
  }

  async delete(bareJid: string): Promise<boolean> {
    return this.stmts.delete.run(bareJid).changes > 0;
  }

  async list(domain?: string): Promise<string[]> {
    return (domain === undefined ? this.stmts.listAll.all() : this.stmts.listDomain.all(domain)) as string[];
  }

  private putAll(bareJid: string, credentials: ReadonlyMap<ScramHash, ScramCredentials>): void {
    for (const [hash, c] of credentials) {
      this.stmts.putScram.run(bareJid, hash, c.salt, c.iterations, c.storedKey, c.serverKey);
    }
  }
}
