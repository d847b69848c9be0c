import type { Database, Migration } from '../../src';

export type Subscription = 'none' | 'to' | 'from' | 'both';

/**
 * Everything the server keeps about one (user, contact) pair: the roster item (RFC 6121 §2.1)
 * and the subscription bookkeeping around it. A row with `inRoster` false only records an
 * unanswered inbound subscription request: RFC 6121 §A.1 says the server SHOULD NOT add such a
 * contact to the roster until the user approves, so it is not part of roster results.
 */
export interface StoredRelation {
  /** The contact's bare JID. */
  readonly contact: string;
  readonly name: string | undefined;
  readonly subscription: Subscription;
  /** The user asked the contact for a subscription (ask='subscribe'). */
  readonly ask: boolean;
  /** The user pre-approved a subscription request from the contact (RFC 6121 §3.4). */
  readonly approved: boolean;
  /** The contact's unanswered subscription request, as XML, to deliver again (RFC 6121 §3.1.3). */
  readonly pendingIn: string | undefined;
  readonly inRoster: boolean;
  readonly groups: readonly string[];
}

/** Roster storage, keyed by bare JID strings. Async so that another database can implement it. */
export interface RosterStore {
  get(user: string, contact: string): Promise<StoredRelation | undefined>;
  /** Items on the roster (inRoster), ordered by contact. */
  items(user: string): Promise<StoredRelation[]>;
  /** Rows with an unanswered inbound request, oldest first. */
  pending(user: string): Promise<StoredRelation[]>;
  /** Number of rows: on the roster, or only pending requests. */
  count(user: string, inRoster: boolean): Promise<number>;
  /** The roster version (RFC 6121 §2.6); '0' before the first change. */
  version(user: string): Promise<string>;
  /** Inserts or replaces a row; with `bump`, also advances the version (one transaction). Returns the version. */
  put(user: string, relation: StoredRelation, bump: boolean): Promise<string>;
  /** Deletes a row; with `bump`, also advances the version. Returns the version. */
  remove(user: string, contact: string, bump: boolean): Promise<string>;
  /** Deletes an account's rows and version. */
  deleteUser(user: string): Promise<void>;
}

export const ROSTER_MIGRATIONS: Migration[] = [
  `CREATE TABLE roster_item (
     user_jid TEXT NOT NULL,
     contact_jid TEXT NOT NULL,
     name TEXT,
     subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
     ask INTEGER NOT NULL DEFAULT 0,
     approved INTEGER NOT NULL DEFAULT 0,
     pending_in TEXT,
     pending_since INTEGER,
     in_roster INTEGER NOT NULL DEFAULT 1,
     groups TEXT NOT NULL DEFAULT '[]',
     PRIMARY KEY (user_jid, contact_jid)) STRICT;
   CREATE TABLE roster_version (
     user_jid TEXT PRIMARY KEY,
     version INTEGER NOT NULL) STRICT;`,
];

interface Row {
  contact_jid: string;
  name: string | null;
  subscription: Subscription;
  ask: number;
  approved: number;
  pending_in: string | null;
  in_roster: number;
  groups: string;
}

const COLUMNS = 'contact_jid, name, subscription, ask, approved, pending_in, in_roster, groups';

function fromRow(r: Row): StoredRelation {
  let groups: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.groups);
    if (Array.isArray(parsed)) groups = parsed.filter((g): g is string => typeof g === 'string');
  } catch {
    // A damaged groups column loses the groups, not the item.
  }
  return {
    contact: r.contact_jid,
    name: r.name ?? undefined,
    subscription: r.subscription,
    ask: r.ask !== 0,
    approved: r.approved !== 0,
    pendingIn: r.pending_in ?? undefined,
    inRoster: r.in_roster !== 0,
    groups,
  };
}

export class SqliteRosterStore implements RosterStore {
  private readonly stmts;
  private readonly putTx;
  private readonly removeTx;
  private readonly deleteTx;

  constructor(db: Database) {
    this.stmts = {
      get: db.prepare(`SELECT ${COLUMNS} FROM roster_item WHERE user_jid = ? AND contact_jid = ?`),
      items: db.prepare(`SELECT ${COLUMNS} FROM roster_item WHERE user_jid = ? AND in_roster = 1 ORDER BY contact_jid`),
      pending: db.prepare(`SELECT ${COLUMNS} FROM roster_item WHERE user_jid = ? AND pending_in IS NOT NULL ORDER BY pending_since, contact_jid`),
      count: db.prepare('SELECT COUNT(*) FROM roster_item WHERE user_jid = ? AND in_roster = ?').pluck(),
      version: db.prepare('SELECT version FROM roster_version WHERE user_jid = ?').pluck(),
      // The first version is the current time in ms rather than 1: a client that cached the
      // roster of a deleted account with the same JID cannot match a recreated account's version.
      bump: db.prepare(`INSERT INTO roster_version (user_jid, version) VALUES (?, ?)
        ON CONFLICT (user_jid) DO UPDATE SET version = version + 1 RETURNING version`).pluck(),
      put: db.prepare(`INSERT INTO roster_item (user_jid, contact_jid, name, subscription, ask, approved, pending_in, pending_since, in_roster, groups)
        VALUES (@user, @contact, @name, @subscription, @ask, @approved, @pendingIn, @since, @inRoster, @groups)
        ON CONFLICT (user_jid, contact_jid) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
          ask = excluded.ask, approved = excluded.approved, pending_in = excluded.pending_in,
          pending_since = CASE WHEN excluded.pending_in IS NULL THEN NULL ELSE COALESCE(roster_item.pending_since, excluded.pending_since) END,
          in_roster = excluded.in_roster, groups = excluded.groups`),
      remove: db.prepare('DELETE FROM roster_item WHERE user_jid = ? AND contact_jid = ?'),
      deleteItems: db.prepare('DELETE FROM roster_item WHERE user_jid = ?'),
      deleteVersion: db.prepare('DELETE FROM roster_version WHERE user_jid = ?'),
    };
    const bump = (user: string): string => String(this.stmts.bump.get(user, Date.now()) as number);
    this.putTx = db.transaction((user: string, r: StoredRelation, doBump: boolean): string => {
      this.stmts.put.run({
        user,
        contact: r.contact,
        name: r.name ?? null,
        subscription: r.subscription,
        ask: r.ask ? 1 : 0,
        approved: r.approved ? 1 : 0,
        pendingIn: r.pendingIn ?? null,
        since: r.pendingIn === undefined ? null : Date.now(),
        inRoster: r.inRoster ? 1 : 0,
        groups: JSON.stringify(r.groups),
      });
      return doBump ? bump(user) : this.currentVersion(user);
    });
    this.removeTx = db.transaction((user: string, contact: string, doBump: boolean): string => {
      this.stmts.remove.run(user, contact);
      return doBump ? bump(user) : this.currentVersion(user);
    });
    this.deleteTx = db.transaction((user: string) => {
      this.stmts.deleteItems.run(user);
      this.stmts.deleteVersion.run(user);
    });
  }

  private currentVersion(user: string): string {
    const v = this.stmts.version.get(user) as number | undefined;
    return v === undefined ? '0' : String(v);
  }

  async version(user: string): Promise<string> {
    return this.currentVersion(user);
  }

  async get(user: string, contact: string): Promise<StoredRelation | undefined> {
    const r = this.stmts.get.get(user, contact) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  async items(user: string): Promise<StoredRelation[]> {
    return (this.stmts.items.all(user) as Row[]).map(fromRow);
  }

  async pending(user: string): Promise<StoredRelation[]> {
    return (this.stmts.pending.all(user) as Row[]).map(fromRow);
  }

  async count(user: string, inRoster: boolean): Promise<number> {
    return this.stmts.count.get(user, inRoster ? 1 : 0) as number;
  }

  async put(user: string, relation: StoredRelation, bump: boolean): Promise<string> {
    return this.putTx(user, relation, bump);
  }

  async remove(user: string, contact: string, bump: boolean): Promise<string> {
    return this.removeTx(user, contact, bump);
  }

  async deleteUser(user: string): Promise<void> {
    this.deleteTx(user);
  }
}
