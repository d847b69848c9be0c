import type { Database, Migration } from '../../src';

/** The unavailable presence an account last went offline with (for probe answers, RFC 6121 §4.3.2). */
export interface LastUnavailable {
  /** The <presence type='unavailable'/> stanza as XML, 'from' the account's bare JID. */
  readonly xml: string;
  /** When the account went offline, ms since the epoch. */
  readonly at: number;
}

/** Presence storage, keyed by bare JID strings. Async so that another database can implement it. */
export interface PresenceStore {
  lastUnavailable(user: string): Promise<LastUnavailable | undefined>;
  setLastUnavailable(user: string, last: LastUnavailable): Promise<void>;
  deleteUser(user: string): Promise<void>;
}

export const PRESENCE_MIGRATIONS: Migration[] = [
  `CREATE TABLE presence_last_unavailable (
     user_jid TEXT PRIMARY KEY,
     stanza TEXT NOT NULL,
     at INTEGER NOT NULL) STRICT`,
];

export class SqlitePresenceStore implements PresenceStore {
  private readonly stmts;

  constructor(db: Database) {
    this.stmts = {
      get: db.prepare('SELECT stanza, at FROM presence_last_unavailable WHERE user_jid = ?'),
      set: db.prepare(`INSERT INTO presence_last_unavailable (user_jid, stanza, at) VALUES (?, ?, ?)
        ON CONFLICT (user_jid) DO UPDATE SET stanza = excluded.stanza, at = excluded.at`),
      delete: db.prepare('DELETE FROM presence_last_unavailable WHERE user_jid = ?'),
    };
  }

  async lastUnavailable(user: string): Promise<LastUnavailable | undefined> {
    const r = this.stmts.get.get(user) as { stanza: string; at: number } | undefined;
    return r ? { xml: r.stanza, at: r.at } : undefined;
  }

  async setLastUnavailable(user: string, last: LastUnavailable): Promise<void> {
    this.stmts.set.run(user, last.xml, last.at);
  }

  async deleteUser(user: string): Promise<void> {
    this.stmts.delete.run(user);
  }
}
