import type { Database } from '../../src';

export interface LastActivity {
  /** When the account last went offline, in ms since the epoch. */
  at: number;
  /** Status text of the last unavailable presence ('' when none). */
  status: string;
}

/** Last logout per account (bare JID). Async so that a network database can implement it. */
export interface LastStore {
  get(jid: string): Promise<LastActivity | undefined>;
  set(jid: string, activity: LastActivity): Promise<void>;
  remove(jid: string): Promise<void>;
}

export const LAST_MIGRATIONS = [
  `CREATE TABLE last_activity (
     jid TEXT PRIMARY KEY,
     at INTEGER NOT NULL,
     status TEXT NOT NULL) STRICT`,
];

export class SqliteLastStore implements LastStore {
  private readonly stmts;

  constructor(db: Database) {
    this.stmts = {
      get: db.prepare('SELECT at, status FROM last_activity WHERE jid = ?'),
      set: db.prepare(`INSERT INTO last_activity (jid, at, status) VALUES (?, ?, ?)
        ON CONFLICT (jid) DO UPDATE SET at = excluded.at, status = excluded.status`),
      remove: db.prepare('DELETE FROM last_activity WHERE jid = ?'),
    };
  }

  async get(jid: string): Promise<LastActivity | undefined> {
    return this.stmts.get.get(jid) as LastActivity | undefined;
  }

  async set(jid: string, { at, status }: LastActivity): Promise<void> {
    this.stmts.set.run(jid, at, status);
  }

  async remove(jid: string): Promise<void> {
    this.stmts.remove.run(jid);
  }
}
