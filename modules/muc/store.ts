import type { Database } from '../../src';

export type StoredAffiliation = 'owner' | 'admin' | 'member' | 'outcast';

export interface AffiliationRow {
  /** A bare JID (or a domain, for a domain-wide ban). */
  jid: string;
  affiliation: StoredAffiliation;
  /** The nick reserved for this JID in the room, if any. */
  nick: string | null;
  reason: string | null;
}

export interface HistoryRow {
  /** The reflected message as sent to occupants, without 'to'. */
  xml: string;
  /** When the room received it, in ms since the epoch. */
  stamp: number;
}

export interface RoomRow {
  /** The room's bare JID. */
  jid: string;
  /** The room configuration as JSON. */
  config: string;
  subject: string | null;
  /** The nick of whoever set the subject; null when the room or an admin outside it did. */
  subjectNick: string | null;
  subjectAt: number | null;
  createdAt: number;
}

export interface StoredRoom extends RoomRow {
  affiliations: AffiliationRow[];
  /** Oldest first. */
  history: HistoryRow[];
}

/**
 * Persistent rooms: configuration, subject, affiliations and recent history. Temporary rooms
 * live only in memory and are never written. Async so that another database can implement it.
 */
export interface MucStore {
  /** Every stored room with its affiliations and at most `historyLimit` latest messages. */
  loadAll(historyLimit: number): Promise<StoredRoom[]>;
  /** Writes a room whole (configuration, subject, affiliations, history), replacing what was stored. */
  saveRoom(room: StoredRoom): Promise<void>;
  /** Updates the configuration of a stored room. */
  saveConfig(jid: string, config: string): Promise<void>;
  saveSubject(jid: string, subject: string | null, nick: string | null, at: number | null): Promise<void>;
  /** Sets (row) or removes (null, affiliation 'none') affiliations, all in one transaction. */
  setAffiliations(room: string, changes: readonly { jid: string; row: AffiliationRow | null }[]): Promise<void>;
  /** Stores one message and keeps only the latest `keep` of the room. */
  appendHistory(room: string, entry: HistoryRow, keep: number): Promise<void>;
  trimHistory(room: string, keep: number): Promise<void>;
  /** Removes a room and everything stored for it. */
  deleteRoom(jid: string): Promise<void>;
  /** Removes a JID's affiliations in every room; returns those rooms. */
  deleteAffiliationsOf(jid: string): Promise<string[]>;
}

export const MUC_MIGRATIONS = [
  `CREATE TABLE muc_room (
     jid TEXT PRIMARY KEY,
     config TEXT NOT NULL,
     subject TEXT,
     subject_nick TEXT,
     subject_at INTEGER,
     created_at INTEGER NOT NULL) STRICT;
   CREATE TABLE muc_affiliation (
     room TEXT NOT NULL REFERENCES muc_room (jid) ON DELETE CASCADE,
     jid TEXT NOT NULL,
     affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
     nick TEXT,
     reason TEXT,
     PRIMARY KEY (room, jid)) STRICT;
   CREATE INDEX muc_affiliation_jid ON muc_affiliation (jid);
   CREATE TABLE muc_history (
     id INTEGER PRIMARY KEY,
     room TEXT NOT NULL REFERENCES muc_room (jid) ON DELETE CASCADE,
     stamp INTEGER NOT NULL,
     xml TEXT NOT NULL) STRICT;
   CREATE INDEX muc_history_room ON muc_history (room, id);`,
];

export class SqliteMucStore implements MucStore {
  private readonly stmts;
  private readonly saveRoomTx: (room: StoredRoom) => void;
  private readonly setAffiliationsTx: (room: string, changes: readonly { jid: string; row: AffiliationRow | null }[]) => void;
  private readonly appendTx: (room: string, entry: HistoryRow, keep: number) => void;
  private readonly deleteAffiliationsTx: (jid: string) => string[];

  constructor(db: Database) {
    this.stmts = {
      rooms: db.prepare('SELECT jid, config, subject, subject_nick AS subjectNick, subject_at AS subjectAt, created_at AS createdAt FROM muc_room ORDER BY jid'),
      affiliations: db.prepare('SELECT jid, affiliation, nick, reason FROM muc_affiliation WHERE room = ? ORDER BY jid'),
      history: db.prepare('SELECT xml, stamp FROM (SELECT id, xml, stamp FROM muc_history WHERE room = ? ORDER BY id DESC LIMIT ?) ORDER BY id'),
      upsertRoom: db.prepare(`INSERT INTO muc_room (jid, config, subject, subject_nick, subject_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (jid) DO UPDATE SET config = excluded.config, subject = excluded.subject, subject_nick = excluded.subject_nick, subject_at = excluded.subject_at`),
      config: db.prepare('UPDATE muc_room SET config = ? WHERE jid = ?'),
      subject: db.prepare('UPDATE muc_room SET subject = ?, subject_nick = ?, subject_at = ? WHERE jid = ?'),
      setAffiliation: db.prepare(`INSERT INTO muc_affiliation (room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`),
      deleteAffiliation: db.prepare('DELETE FROM muc_affiliation WHERE room = ? AND jid = ?'),
      clearAffiliations: db.prepare('DELETE FROM muc_affiliation WHERE room = ?'),
      appendHistory: db.prepare('INSERT INTO muc_history (room, stamp, xml) VALUES (?, ?, ?)'),
      // Deletes everything older than the room's `keep` latest messages (an index range scan).
      trimHistory: db.prepare(`DELETE FROM muc_history WHERE room = ? AND id <= (
        SELECT id FROM muc_history WHERE room = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`),
      clearHistory: db.prepare('DELETE FROM muc_history WHERE room = ?'),
      deleteRoom: db.prepare('DELETE FROM muc_room WHERE jid = ?'),
      roomsOf: db.prepare('SELECT room FROM muc_affiliation WHERE jid = ? ORDER BY room').pluck(),
      deleteAffiliationsOf: db.prepare('DELETE FROM muc_affiliation WHERE jid = ?'),
    };
    this.saveRoomTx = db.transaction((room: StoredRoom) => {
      const s = this.stmts;
      s.upsertRoom.run(room.jid, room.config, room.subject, room.subjectNick, room.subjectAt, room.createdAt);
      s.clearAffiliations.run(room.jid);
      for (const a of room.affiliations) s.setAffiliation.run(room.jid, a.jid, a.affiliation, a.nick, a.reason);
      s.clearHistory.run(room.jid);
      for (const h of room.history) s.appendHistory.run(room.jid, h.stamp, h.xml);
    });
    this.setAffiliationsTx = db.transaction((room: string, changes: readonly { jid: string; row: AffiliationRow | null }[]) => {
      for (const { jid, row } of changes) {
        if (row === null) this.stmts.deleteAffiliation.run(room, jid);
        else this.stmts.setAffiliation.run(room, jid, row.affiliation, row.nick, row.reason);
      }
    });
    this.appendTx = db.transaction((room: string, entry: HistoryRow, keep: number) => {
      this.stmts.appendHistory.run(room, entry.stamp, entry.xml);
      this.stmts.trimHistory.run(room, room, keep);
    });
    this.deleteAffiliationsTx = db.transaction((jid: string) => {
      const rooms = this.stmts.roomsOf.all(jid) as string[];
      this.stmts.deleteAffiliationsOf.run(jid);
      return rooms;
    });
  }

  async loadAll(historyLimit: number): Promise<StoredRoom[]> {
    const rows = this.stmts.rooms.all() as RoomRow[];
    return rows.map((r) => ({
      ...r,
      affiliations: this.stmts.affiliations.all(r.jid) as AffiliationRow[],
      history: historyLimit > 0 ? (this.stmts.history.all(r.jid, historyLimit) as HistoryRow[]) : [],
    }));
  }

  async saveRoom(room: StoredRoom): Promise<void> {
    this.saveRoomTx(room);
  }

  async saveConfig(jid: string, config: string): Promise<void> {
    this.stmts.config.run(config, jid);
  }

  async saveSubject(jid: string, subject: string | null, nick: string | null, at: number | null): Promise<void> {
    this.stmts.subject.run(subject, nick, at, jid);
  }

  async setAffiliations(room: string, changes: readonly { jid: string; row: AffiliationRow | null }[]): Promise<void> {
    if (changes.length > 0) this.setAffiliationsTx(room, changes);
  }

  async appendHistory(room: string, entry: HistoryRow, keep: number): Promise<void> {
    this.appendTx(room, entry, keep);
  }

  async trimHistory(room: string, keep: number): Promise<void> {
    if (keep <= 0) this.stmts.clearHistory.run(room);
    else this.stmts.trimHistory.run(room, room, keep);
  }

  async deleteRoom(jid: string): Promise<void> {
    this.stmts.deleteRoom.run(jid);
  }

  async deleteAffiliationsOf(jid: string): Promise<string[]> {
    return this.deleteAffiliationsTx(jid);
  }
}
