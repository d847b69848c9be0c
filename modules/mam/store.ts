import { createCipheriv, createDecipheriv, createHash, randomBytes, type Cipher, type Decipher } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Database, Element, Migration } from '../../src';
import { ArchiveBatch, BatchReader, readUint48 } from './batch';
import { ALL_PEERS, packSeqs, SpanCollector, unpackSeqs, type Span } from './spans';

/** A message to archive. */
export interface NewArchiveEntry {
  /** The archive: an account's bare JID, or a room's. */
  readonly owner: string;
  /** The other party's bare JID and resource ('' for none). */
  readonly withBare: string;
  readonly withResource: string;
  readonly direction: 'in' | 'out';
  /**
   * When it was sent or received, in ms since the epoch; absent, when it is archived (read
   * only for a new row: the recipient's side of a message between two accounts shares the
   * sender's row and its time, so it costs no clock read).
   */
  readonly ts?: number;
  /**
   * The message: its XML, or the element, serialised as the store queues it (an element the
   * store has just queued is the same message, serialised once).
   */
  readonly xml: string | Element;
}

/** A stored message as queries return it. */
export interface ArchivedMessage {
  /** Its archive id (the XEP-0359 stanza-id). */
  readonly id: string;
  /** The archive's timestamp, in ms since the epoch. */
  readonly ts: number;
  readonly xml: string;
}

/** A message's place in its archive, to page or filter from; only meaningful to the store that made it. */
export interface Cursor {
  readonly seq: number;
  readonly ts: number;
}

/** What a query selects (XEP-0313 §4.1): every field narrows the result set. */
export interface ArchiveFilter {
  readonly owner: string;
  /** Only messages with this bare JID ... */
  readonly withBare?: string;
  /** ... and, when given, this resource. */
  readonly withResource?: string;
  /** Timestamps (ms), inclusive. */
  readonly start?: number;
  readonly end?: number;
  /** Only messages after / before these ones (exclusive). */
  readonly after?: Cursor;
  readonly before?: Cursor;
  /** Only these messages (cursors from `locate`). */
  readonly only?: readonly Cursor[];
  /** Full-text search: messages whose text has all these words ('word*' matches a prefix). */
  readonly text?: string;
}

/** Which page of a result set to fetch. */
export interface PageRequest {
  /** Exclusive bounds on top of the filter's (XEP-0059 after/before). */
  readonly after?: Cursor;
  readonly before?: Cursor;
  /** Newest first (for XEP-0059 'before' paging); oldest first otherwise. */
  readonly backward: boolean;
  readonly limit: number;
  /** Rows to skip first (XEP-0059 §2.6 index). */
  readonly offset?: number;
}

/** The mam:2 archiving preferences (XEP-0441). */
export interface ArchivePrefs {
  readonly default: 'always' | 'never' | 'roster';
  readonly always: readonly string[];
  readonly never: readonly string[];
}

/**
 * Message archives (XEP-0313), one per owner, in archive order. Async so that another
 * database can implement it. The SQLite store returns ids at once and writes new messages in
 * batches (one transaction per FlushPolicy); its reads first write what is queued, so nothing a
 * caller was given an id for is ever missing from a query.
 */
export interface MamStore {
  /** Archives a message; returns its archive id, at once when the store can hand ids out before writing. */
  append(entry: NewArchiveEntry): string | Promise<string>;
  /** The cursor of the owner's message with this archive id, or undefined. */
  locate(owner: string, id: string): Promise<Cursor | undefined>;
  /** Up to `page.limit` matching messages, in the page's direction (newest first when backward). */
  page(filter: ArchiveFilter, page: PageRequest): Promise<ArchivedMessage[]>;
  /**
   * How many messages match (strictly before `before` when given); undefined when more than
   * `cap`, so that counting never walks a whole large archive.
   */
  count(filter: ArchiveFilter, cap: number, before?: Cursor): Promise<number | undefined>;
  /** The owner's first and last messages (XEP-0313 §5 metadata). */
  bounds(owner: string): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined>;
  prefs(owner: string): Promise<ArchivePrefs | undefined>;
  setPrefs(owner: string, prefs: ArchivePrefs): Promise<void>;
  /** Deletes up to `limit` of the oldest messages stamped before `cutoff` (all archives); returns how many. */
  expire(cutoff: number, limit: number): Promise<number>;
  /** Deletes an owner's messages and preferences. */
  removeOwner(owner: string): Promise<void>;
  /** Writes whatever is queued. */
  flush(): Promise<void>;
  /** Writes whatever is queued and lets go of what the store opened. */
  close(): Promise<void>;
}

export const MAM_MIGRATIONS: Migration[] = [
  // seq is the archive order (and rowid): ids are handed out by the store before the batch
  // that writes them, and AUTOINCREMENT keeps sqlite_sequence, so an id is never reused.
  // ts never goes down within one owner's archive (the store sees to it), so (owner, ts)
  // index order, which ends in the rowid, is archive order too: time filters and paging are
  // both ranges of one index. The FTS table is contentless: its tokens carry a tag of the
  // owner (see ftsWords), so a search only ever reads that owner's postings.
  `CREATE TABLE mam_message (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     owner TEXT NOT NULL,
     nonce INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     with_bare TEXT NOT NULL,
     with_resource TEXT NOT NULL,
     direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
     xml TEXT NOT NULL) STRICT;
   CREATE INDEX mam_message_owner_ts ON mam_message (owner, ts);
   CREATE INDEX mam_message_owner_with_ts ON mam_message (owner, with_bare, ts);
   CREATE VIRTUAL TABLE mam_fts USING fts5(words, content='', contentless_delete=1, tokenize='ascii');
   CREATE TABLE mam_prefs (
     owner TEXT PRIMARY KEY,
     default_mode TEXT NOT NULL CHECK (default_mode IN ('always', 'never', 'roster')),
     always_jids TEXT NOT NULL,
     never_jids TEXT NOT NULL) STRICT;
   CREATE TABLE mam_key (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     key BLOB NOT NULL) STRICT;`,
  // The key archive ids are encrypted with (see IdCodec), made once per database.
  (db) => {
    db.prepare('INSERT INTO mam_key (id, key) VALUES (1, ?)').run(randomBytes(16));
  },
  // Owners and peers as numbers from a dictionary of JIDs: the two indexes hold small integer
  // keys instead of JID strings, which made each archived row half as costly to write. The
  // sequence loses AUTOINCREMENT (a write to sqlite_sequence per row): a reused sequence
  // number, after the newest rows were deleted, gets a new random nonce, so an old id never
  // finds the new message.
  `CREATE TABLE mam_jid (
     id INTEGER PRIMARY KEY,
     jid TEXT NOT NULL UNIQUE) STRICT;
   INSERT INTO mam_jid (jid) SELECT owner FROM mam_message UNION SELECT with_bare FROM mam_message;
   CREATE TABLE mam_entry (
     seq INTEGER PRIMARY KEY,
     owner_id INTEGER NOT NULL,
     nonce INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     with_id INTEGER NOT NULL,
     with_resource TEXT NOT NULL,
     direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
     xml TEXT NOT NULL) STRICT;
   INSERT INTO mam_entry (seq, owner_id, nonce, ts, with_id, with_resource, direction, xml)
     SELECT m.seq, o.id, m.nonce, m.ts, w.id, m.with_resource, m.direction, m.xml
     FROM mam_message m JOIN mam_jid o ON o.jid = m.owner JOIN mam_jid w ON w.jid = m.with_bare;
   DROP TABLE mam_message;
   CREATE INDEX mam_entry_owner_ts ON mam_entry (owner_id, ts);
   CREATE INDEX mam_entry_owner_with_ts ON mam_entry (owner_id, with_id, ts);`,
  // Full-text segments are merged once 16 pile up at a level rather than 4: a fifth less work
  // per archived message, for a search that reads a few more segments.
  `INSERT INTO mam_fts (mam_fts, rank) VALUES ('automerge', 16);`,
  // Full text is indexed per archive when it is first searched, then brought up to date at
  // each search: how far each archive's postings go. Archives indexed so far are complete.
  `CREATE TABLE mam_fts_done (
     owner_id INTEGER PRIMARY KEY,
     upto INTEGER NOT NULL) STRICT;
   INSERT INTO mam_fts_done (owner_id, upto) SELECT owner_id, max(seq) FROM mam_entry GROUP BY owner_id;`,
  // One row per message, in both archives it belongs to: its sender's (when from_nonce is
  // set) and its recipient's (when to_nonce is). A message between two accounts was two rows
  // with four index entries; it is now one row with three, and its XML is stored once: half
  // the SQLite work of archiving it (7.3 against 3.8 µs a message, 200 owners chatting) and
  // half the file. An archive is the union of two partial indexes, a conversation one range
  // of the index on the unordered pair of JIDs. Full-text rows are seq * 2 + side (0 for the
  // sender's archive, 1 for the recipient's); the old ones were seq, so they are dropped and
  // each archive is indexed again when next searched. Entries written before stay a row each
  // (with one side set), under the same ids: a million of them move in about 2 s.
  `CREATE TABLE mam_row (
     seq INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     from_id INTEGER NOT NULL,
     from_resource TEXT NOT NULL,
     from_nonce INTEGER,
     to_id INTEGER NOT NULL,
     to_resource TEXT NOT NULL,
     to_nonce INTEGER,
     xml TEXT NOT NULL,
     pair INTEGER GENERATED ALWAYS AS ((min(from_id, to_id) << 32) | max(from_id, to_id)) VIRTUAL) STRICT;
   INSERT INTO mam_row (seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml)
     SELECT seq, ts,
       iif(direction = 'out', owner_id, with_id), iif(direction = 'out', '', with_resource), iif(direction = 'out', nonce, NULL),
       iif(direction = 'out', with_id, owner_id), iif(direction = 'out', with_resource, ''), iif(direction = 'out', NULL, nonce),
       xml
     FROM mam_entry;
   DROP TABLE mam_entry;
   CREATE INDEX mam_row_sender ON mam_row (from_id, ts) WHERE from_nonce IS NOT NULL;
   CREATE INDEX mam_row_recipient ON mam_row (to_id, ts) WHERE to_nonce IS NOT NULL;
   CREATE INDEX mam_row_pair ON mam_row (pair, ts);
   DROP TABLE mam_fts;
   CREATE VIRTUAL TABLE mam_fts USING fts5(words, content='', contentless_delete=1, tokenize='ascii');
   INSERT INTO mam_fts (mam_fts, rank) VALUES ('automerge', 16);
   DELETE FROM mam_fts_done;`,
  // Timestamps never go down along the whole sequence, not only along each archive: an
  // archive's order is then its sequence order alone, and the indexes leave ts out (their
  // rowid, the sequence number, orders each key's entries). Entries are 6 bytes shorter and
  // archiving costs a seventh less SQLite work (3.1 against 3.7 µs a message, 200 owners
  // chatting). A time bound becomes a sequence bound by a binary search over the rows.
  // Rows stamped before a row that precedes them (a clock stepped back, an older time
  // given for a room's message) take that row's time.
  `UPDATE mam_row SET ts = r.top FROM (SELECT seq, max(ts) OVER (ORDER BY seq) AS top FROM mam_row) AS r
     WHERE mam_row.seq = r.seq AND mam_row.ts < r.top;
   DROP INDEX mam_row_sender;
   DROP INDEX mam_row_recipient;
   DROP INDEX mam_row_pair;
   CREATE INDEX mam_row_sender ON mam_row (from_id) WHERE from_nonce IS NOT NULL;
   CREATE INDEX mam_row_recipient ON mam_row (to_id) WHERE to_nonce IS NOT NULL;
   CREATE INDEX mam_row_pair ON mam_row (pair);`,
  // Spans (spans.ts) instead of the three indexes: a row per archive, and per archive and
  // peer, per write transaction, holding its sequence numbers (n of them). Writing 200
  // owners' chat, 300 000 messages in 20 000-message transactions, measured alone: SQLite's
  // work 1.7-1.9 µs a message against 3.5-4.0, the store's whole write 2.9-4.3 against
  // 4.7-7.3, and a file a sixth smaller. Rows written before get a span per archive and peer
  // for each MIGRATED_SPAN sequence numbers.
  (db) => {
    db.exec(`CREATE TABLE mam_span (
               owner_id INTEGER NOT NULL,
               peer_id INTEGER NOT NULL,
               first_seq INTEGER NOT NULL,
               last_seq INTEGER NOT NULL,
               n INTEGER NOT NULL,
               seqs BLOB NOT NULL,
               PRIMARY KEY (owner_id, peer_id, first_seq)) STRICT, WITHOUT ROWID;
             DROP INDEX mam_row_sender;
             DROP INDEX mam_row_recipient;
             DROP INDEX mam_row_pair;`);
    const rows = db.prepare(`SELECT seq, from_id, from_nonce IS NOT NULL AS sent, to_id, to_nonce IS NOT NULL AS received
                             FROM mam_row WHERE seq > ? ORDER BY seq LIMIT 10000`);
    const insert = db.prepare(INSERT_SPAN);
    let spans = new SpanCollector();
    let chunk = -1;
    const flush = (): void => {
      for (const [owner, peer, seqs] of spans.spans()) insert.run(owner, peer, seqs[0], seqs[seqs.length - 1], seqs.length, packSeqs(seqs));
      spans = new SpanCollector();
    };
    for (let after = 0; ; ) {
      const page = rows.all(after) as { seq: number; from_id: number; sent: number; to_id: number; received: number }[];
      if (page.length === 0) break;
      for (const r of page) {
        if (Math.floor(r.seq / MIGRATED_SPAN) !== chunk) {
          flush();
          chunk = Math.floor(r.seq / MIGRATED_SPAN);
        }
        if (r.sent) spans.add(r.from_id, r.to_id, r.seq);
        if (r.received) spans.add(r.to_id, r.from_id, r.seq);
      }
      after = page[page.length - 1]!.seq;
    }
    flush();
  },
];

// ---- archive ids ------------------------------------------------------------------------

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_BYTES = 16;
const ID_LENGTH = Math.ceil((ID_BYTES * 8) / 5);

/**
 * Archive ids: the row's sequence number (8 bytes) and its random nonce (8 bytes, 6 used),
 * encrypted as one AES block with the server's archive key, in base32 (26 characters). The
 * sequence finds the row and the nonce is checked against it. Encrypted because XEP-0359 §4
 * says observers "MUST NOT be able to infer any information from it, e.g. the size of the
 * message archive"; one block of a block cipher is a permutation, so ids stay unique.
 */
export class IdCodec {
  // ECB with no padding keeps no state between blocks, so one cipher of each kind serves
  // every id: making one per id cost five times the encryption itself.
  private readonly cipher: Cipher;
  private readonly decipher: Decipher;

  constructor(key: Buffer) {
    if (key.length !== 16) throw new Error('the archive id key must be 16 bytes');
    this.cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.decipher = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  }

  encode(seq: number, nonce: number): string {
    const block = Buffer.alloc(ID_BYTES);
    block.writeUIntBE(seq, 2, 6);
    block.writeUIntBE(nonce, 10, 6);
    const out = Buffer.allocUnsafe(ID_LENGTH);
    base32Into(this.cipher.update(block), 0, out, 0);
    return out.toString('latin1');
  }

  /**
   * The ids of `count` consecutive sequence numbers from `firstSeq`, with nonces read from
   * `nonces` (6 bytes each), as one string of ID_LENGTH characters per id: one cipher call
   * for the lot. Encrypting one id at a time cost a microsecond each, twice per chat message.
   * An id is then a slice of that string, which V8 makes without copying (Buffer.toString of
   * each id cost 0.1 µs).
   */
  encodeRun(firstSeq: number, nonces: Buffer, count: number): string {
    const blocks = Buffer.alloc(ID_BYTES * count);
    for (let i = 0; i < count; i++) {
      const seq = firstSeq + i;
      const at = i * ID_BYTES;
      // seq as 6 bytes big-endian at 2 (written bytewise: writeUIntBE's checks cost more than the rest)
      const high = Math.floor(seq / 0x100000000);
      blocks[at + 2] = high >>> 8;
      blocks[at + 3] = high & 0xff;
      blocks[at + 4] = seq >>> 24;
      blocks[at + 5] = (seq >>> 16) & 0xff;
      blocks[at + 6] = (seq >>> 8) & 0xff;
      blocks[at + 7] = seq & 0xff;
      for (let k = 0; k < 6; k++) blocks[at + 10 + k] = nonces[i * 6 + k]!;
    }
    const sealed = this.cipher.update(blocks);
    const out = Buffer.allocUnsafe(ID_LENGTH * count);
    for (let i = 0; i < count; i++) base32Into(sealed, i * ID_BYTES, out, i * ID_LENGTH);
    return out.toString('latin1');
  }

  decode(id: string): { seq: number; nonce: number } | undefined {
    const bytes = unbase32(id);
    if (bytes === undefined) return undefined;
    const block = this.decipher.update(bytes);
    // Not one of ours (the unused high bytes of both halves are zero in every id we make).
    if (block.readUInt16BE(0) !== 0 || block.readUInt16BE(8) !== 0) return undefined;
    return { seq: block.readUIntBE(2, 6), nonce: block.readUIntBE(10, 6) };
  }
}

/**
 * Hands out archive ids for consecutive sequence numbers, each with a random nonce, made ahead
 * in runs of ID_RUN (one cipher call and one draw of random bytes per run). A message between
 * two accounts is one row of the archive: its recipient's id (pair()) has the sender's
 * sequence number and a nonce of its own, made ahead in the same run.
 */
export class IdAllocator {
  private nonces: Buffer = Buffer.alloc(0);
  private runIds = '';
  private pairNonces: Buffer = Buffer.alloc(0);
  private pairIds = '';
  private at = 0;
  private length = 0;
  /** The sequence number and nonce of the id `next` or `pair` returned last. */
  seq = 0;
  nonce = 0;

  constructor(private readonly codec: IdCodec, private nextSeq: number) {}

  next(): string {
    if (this.at === this.length) {
      const random = randomBytes(12 * ID_RUN);
      this.nonces = random.subarray(0, 6 * ID_RUN);
      this.pairNonces = random.subarray(6 * ID_RUN);
      this.runIds = this.codec.encodeRun(this.nextSeq, this.nonces, ID_RUN);
      this.pairIds = this.codec.encodeRun(this.nextSeq, this.pairNonces, ID_RUN);
      this.at = 0;
      this.length = ID_RUN;
    }
    const at = this.at++;
    this.seq = this.nextSeq++;
    this.nonce = readUint48(this.nonces, at * 6);
    return this.runIds.slice(at * ID_LENGTH, (at + 1) * ID_LENGTH);
  }

  /** The second id of the sequence number `next` gave last (at most once per number). */
  pair(): string {
    const at = this.at - 1;
    this.nonce = readUint48(this.pairNonces, at * 6);
    return this.pairIds.slice(at * ID_LENGTH, (at + 1) * ID_LENGTH);
  }
}

const BASE32_CODES = Buffer.from(BASE32, 'latin1');

/**
 * The ID_BYTES bytes at `from` in base32 (BASE32, no padding: ID_LENGTH characters), written as
 * ASCII at `to`: three groups of 5 bytes (8 characters each), then the last byte (2).
 */
function base32Into(src: Buffer, from: number, dst: Buffer, to: number): void {
  const code = BASE32_CODES;
  let i = from;
  for (let g = 0; g < 3; g++, i += 5, to += 8) {
    const b0 = src[i]!;
    const b1 = src[i + 1]!;
    const b2 = src[i + 2]!;
    const b3 = src[i + 3]!;
    const b4 = src[i + 4]!;
    dst[to] = code[b0 >> 3]!;
    dst[to + 1] = code[((b0 & 7) << 2) | (b1 >> 6)]!;
    dst[to + 2] = code[(b1 >> 1) & 31]!;
    dst[to + 3] = code[((b1 & 1) << 4) | (b2 >> 4)]!;
    dst[to + 4] = code[((b2 & 15) << 1) | (b3 >> 7)]!;
    dst[to + 5] = code[(b3 >> 2) & 31]!;
    dst[to + 6] = code[((b3 & 3) << 3) | (b4 >> 5)]!;
    dst[to + 7] = code[b4 & 31]!;
  }
  const last = src[i]!;
  dst[to] = code[last >> 3]!;
  dst[to + 1] = code[(last & 7) << 2]!;
}

function unbase32(id: string): Buffer | undefined {
  if (id.length !== ID_LENGTH) return undefined;
  const buf = Buffer.alloc(ID_BYTES);
  let bits = 0;
  let value = 0;
  let pos = 0;
  for (const ch of id) {
    const v = BASE32.indexOf(ch);
    if (v === -1) return undefined;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      buf[pos++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  if (value !== 0) return undefined; // padding bits must be zero: one spelling per id
  return buf;
}

// ---- full-text tokens ---------------------------------------------------------------------

const ASCII = /^[\x00-\x7f]*$/;
const NOT_ASCII_WORD = /[^a-z0-9]+/;

/** Words as the index sees them: letters and digits, lower-cased, without diacritics. */
export function words(text: string): string[] {
  // ASCII (most messages) has no marks to strip and no compatibility forms: the same result
  // for a fraction of the Unicode-aware work.
  if (ASCII.test(text)) return text.toLowerCase().split(NOT_ASCII_WORD).filter((w) => w !== '');
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');
}

/**
 * 16 hex digits (64 bits) standing for the owner, prefixed to every indexed word: long enough
 * that two archives of one server practically never share a tag (queries check the owner anyway).
 */
function ownerTag(owner: string): string {
  let tag = ownerTags.get(owner);
  if (tag === undefined) {
    tag = createHash('sha256').update(owner).digest('hex').slice(0, 16);
    if (ownerTags.size >= OWNER_TAG_CACHE) ownerTags.delete(ownerTags.keys().next().value!);
    ownerTags.set(owner, tag);
  }
  return tag;
}
/** Tags of recent owners: a hash per archived message was a tenth of archiving's cost. */
const ownerTags = new Map<string, string>();
const OWNER_TAG_CACHE = 10_000;

/** What goes into the FTS table for a message: each word tagged with its owner. */
function ftsWords(owner: string, text: string): string {
  const tag = ownerTag(owner);
  return words(text).map((w) => tag + w).join(' ');
}

/**
 * A search string as an FTS5 query: every whitespace-separated term must be there (a term
 * that holds several words, like "don't", is a phrase; a trailing '*' makes it a prefix).
 * Undefined when no term has a word in it, which matches nothing.
 */
function ftsQuery(owner: string, search: string): string | undefined {
  const tag = ownerTag(owner);
  const parts: string[] = [];
  for (const term of search.split(/\s+/)) {
    const ws = words(term);
    if (ws.length === 0) continue;
    // Only letters, digits and the hex tag inside the quotes: nothing to escape.
    parts.push('"' + ws.map((w) => tag + w).join(' ') + '"' + (term.endsWith('*') ? ' *' : ''));
  }
  return parts.length === 0 ? undefined : parts.join(' AND ');
}

// ---- SQLite ------------------------------------------------------------------------------

/** A row as queries read it: which of its nonces is the owner's is decided by from_id (toMessage). */
interface Row {
  seq: number;
  ts: number;
  xml: string;
  from_id: number;
  from_nonce: number | null;
  to_nonce: number | null;
}

/** The columns of a row that say whose archives hold it. */
type Sides = Pick<FullRow, 'from_id' | 'from_nonce' | 'to_id' | 'to_nonce'>;

/** A row with the columns that say whose archives hold it, and the resources. */
interface FullRow extends Row {
  to_id: number;
  from_resource: string;
  to_resource: string;
}

/** The columns of Row, from mam_row m. */
const ROW = 'm.seq AS seq, m.ts AS ts, m.xml AS xml, m.from_id AS from_id, m.from_nonce AS from_nonce, m.to_nonce AS to_nonce';
/** An owner's archive (bound twice to its JID number): the rows of its two sides. */
const SENDER_SIDE = 'm.from_id = ? AND m.from_nonce IS NOT NULL';
const RECIPIENT_SIDE = 'm.to_id = ? AND m.to_nonce IS NOT NULL';
const OWNED = `((${SENDER_SIDE}) OR (${RECIPIENT_SIDE}))`;

const INSERT_SPAN = 'INSERT INTO mam_span (owner_id, peer_id, first_seq, last_seq, n, seqs) VALUES (?, ?, ?, ?, ?, ?)';
/** Sequence numbers per span made for rows archived before spans. */
const MIGRATED_SPAN = 4096;
/** Spans read at a time. */
const SPAN_PAGE = 32;

/** Whether ownerId's archive holds row as the sender's side (0) or the recipient's (1); undefined: neither. */
function sideOf(row: Sides, ownerId: number): 0 | 1 | undefined {
  if (row.from_id === ownerId && row.from_nonce !== null) return 0;
  if (row.to_id === ownerId && row.to_nonce !== null) return 1;
  return undefined;
}

/** The key of the index on the unordered pair of two JID numbers (the generated column pair). */
function pairKey(a: number, b: number): bigint {
  return (BigInt(Math.min(a, b)) << 32n) | BigInt(Math.max(a, b));
}

const MIN_TS = Number.MIN_SAFE_INTEGER;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** JIDs whose dictionary number is kept in memory. */
const JID_ID_CACHE = 20_000;

/**
 * Page size of an archive file (set when the file is made). An archive's index entries land on
 * a few pages per owner, and each commit rewrites every page it touched: with 16 KiB pages
 * (SQLite's default is 4) there are fewer of them. Writing 200 owners' chat (2 rows and 4
 * index entries a message) cost 17.3 µs a message with 4 KiB pages in 5000-row transactions,
 * 12.1 with 16 KiB pages, and 8.9 with 16 KiB pages in 20 000-row transactions.
 */
export const ARCHIVE_PAGE_SIZE = 16 * 1024;

/** When queued entries are written: one transaction per this many, or this long after the first. */
export interface FlushPolicy {
  /** Longest a queued entry waits before it is written (a crash loses at most this much of the archive). */
  readonly ms: number;
  /** Queue length that is written at once, whatever the time. */
  readonly count: number;
}
/**
 * On the routing thread (an in-memory archive), transactions stay short: routing waits for them.
 * The archive's own thread uses WORKER_FLUSH.
 */
const ROUTING_FLUSH: FlushPolicy = { ms: 50, count: 5000 };
/** Archive ids made per cipher call. */
const ID_RUN = 1024;
/** Messages indexed for full text per step of a catch-up; other work runs between steps. */
const TEXT_INDEX_STEP = 2000;

const INSERT_ROWS = 'INSERT INTO mam_row (seq, ts, from_id, from_resource, from_nonce, to_id, to_resource, to_nonce, xml) VALUES';
// The XML comes as UTF-8 bytes (a blob to SQLite), stored as the text they are.
const ROW_VALUES = '(?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT))';
const ROW_ARGS = 9;
/**
 * Rows a write inserts per statement: one statement per row spent as much in binding,
 * stepping and resetting it as in SQLite's insert itself (16 rows at once: 1.5 µs a row
 * against 2.0-2.3 alone).
 */
const ROWS_PER_INSERT = 16;

export class SqliteMamStore implements MamStore {
  private readonly stmts;
  private readonly begin: Statement<unknown[]>;
  private readonly commit: Statement<unknown[]>;
  private readonly rollback: Statement<unknown[]>;
  /** The spans of the rows in the open write transaction (db.inTransaction), written at its commit. */
  private openSpans = new SpanCollector();
  /** Why writing the open transaction failed: its messages are reported lost at flushNow. */
  private failed: unknown = undefined;
  private readonly removeSeqs: (seqs: readonly number[]) => void;
  private readonly removeAll: (owner: string) => void;
  private readonly shapes = new Map<string, Statement<unknown[]>>();
  /**
   * The queue, packed (batch.ts): batches handed over whole (by the routing thread, when
   * this store runs on the archive's thread), then what append() packed here. A queued
   * message holds no JavaScript objects until it is written.
   */
  private handedOver: Uint8Array[] = [];
  private readonly appended = new ArchiveBatch(64 * 1024);
  private queued = 0;
  private scheduled: NodeJS.Timeout | undefined;
  private readonly ids: IdCodec;
  private readonly allocator: IdAllocator;
  /** The newest timestamp written (undefined: read it back), to keep archive time monotonic. */
  private lastTs: number | undefined;
  /** The parameters of one multi-row insert, filled row by row. */
  private readonly rowArgs: unknown[] = new Array<unknown>(ROW_ARGS * ROWS_PER_INSERT).fill(null);
  /** Dictionary numbers of recent JIDs (mam_jid). */
  private readonly jidIds = new Map<string, number>();
  private readonly indexTextStep: (ownerId: number, owner: string) => number;

  /**
   * @param textOf the searchable text of an archived message (its bodies), '' for none
   * @param onError a batch of queued messages could not be written
   * @param onWritten queued messages are done with (written, or reported lost), and so are
   *   the packed batches handed over with them
   */
  constructor(
    private readonly db: Database,
    private readonly textOf: (xml: string) => string,
    private readonly onError: (err: unknown, lost: number) => void,
    private readonly onWritten?: (count: number, batches: Uint8Array[]) => void,
    private readonly flushPolicy: FlushPolicy = ROUTING_FLUSH,
  ) {
    this.stmts = {
      insert: db.prepare(`${INSERT_ROWS} ${ROW_VALUES}`),
      insertMany: db.prepare(`${INSERT_ROWS} ${Array<string>(ROWS_PER_INSERT).fill(ROW_VALUES).join(', ')}`),
      insertFts: db.prepare('INSERT INTO mam_fts (rowid, words) VALUES (?, ?)'),
      jidId: db.prepare('SELECT id FROM mam_jid WHERE jid = ?').pluck(),
      addJid: db.prepare('INSERT INTO mam_jid (jid) VALUES (?) RETURNING id').pluck(),
      locate: db.prepare(`SELECT seq, ts FROM mam_row WHERE seq = ?
                          AND ((from_id = ? AND from_nonce = ?) OR (to_id = ? AND to_nonce = ?))`),
      row: db.prepare(`SELECT ${ROW}, m.to_id AS to_id, m.from_resource AS from_resource, m.to_resource AS to_resource
                       FROM mam_row m WHERE m.seq = ?`),
      sides: db.prepare('SELECT from_id, from_nonce, to_id, to_nonce FROM mam_row WHERE seq = ?'),
      oldestSeq: db.prepare('SELECT seq FROM mam_row ORDER BY seq LIMIT 1').pluck(),
      insertSpan: db.prepare(INSERT_SPAN),
      spansDown: db.prepare(`SELECT first_seq, last_seq, seqs FROM mam_span
                             WHERE owner_id = ? AND peer_id = ? AND first_seq < ? ORDER BY first_seq DESC LIMIT ?`),
      spansUp: db.prepare(`SELECT first_seq, last_seq, seqs FROM mam_span
                           WHERE owner_id = ? AND peer_id = ? AND first_seq >= ? ORDER BY first_seq LIMIT ?`),
      // The messages of spans wholly inside a range, up to a number of spans (each holds one at least).
      spanCount: db.prepare(`SELECT sum(n) FROM (SELECT n FROM mam_span WHERE owner_id = ? AND peer_id = ?
                               AND first_seq > ? AND first_seq < ? AND last_seq < ? ORDER BY first_seq LIMIT ?)`).pluck(),
      spanAtOrBefore: db.prepare(`SELECT first_seq, last_seq, seqs FROM mam_span
                                  WHERE owner_id = ? AND peer_id = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1`),
      deleteSpans: db.prepare('DELETE FROM mam_span WHERE owner_id = ?'),
      deleteSpansBefore: db.prepare('DELETE FROM mam_span WHERE last_seq < ?'),
      newest: db.prepare('SELECT seq, ts FROM mam_row ORDER BY seq DESC LIMIT 1'),
      rowFrom: db.prepare('SELECT seq, ts FROM mam_row WHERE seq >= ? ORDER BY seq LIMIT 1'),
      oldest: db.prepare('SELECT seq, ts FROM mam_row WHERE seq > ? ORDER BY seq LIMIT ?'),
      deleteSeq: db.prepare('DELETE FROM mam_row WHERE seq = ?'),
      deleteFts: db.prepare('DELETE FROM mam_fts WHERE rowid = ?'),
      textDone: db.prepare('SELECT upto FROM mam_fts_done WHERE owner_id = ?').pluck(),
      setTextDone: db.prepare(`INSERT INTO mam_fts_done (owner_id, upto) VALUES (?, ?)
                               ON CONFLICT (owner_id) DO UPDATE SET upto = excluded.upto`),
      deleteTextDone: db.prepare('DELETE FROM mam_fts_done WHERE owner_id = ?'),
      leaveSender: db.prepare('UPDATE mam_row SET from_nonce = NULL WHERE seq = ?'),
      leaveRecipient: db.prepare('UPDATE mam_row SET to_nonce = NULL WHERE seq = ?'),
      prefs: db.prepare('SELECT default_mode, always_jids, never_jids FROM mam_prefs WHERE owner = ?'),
      setPrefs: db.prepare(`INSERT INTO mam_prefs (owner, default_mode, always_jids, never_jids) VALUES (?, ?, ?, ?)
                            ON CONFLICT (owner) DO UPDATE SET default_mode = excluded.default_mode,
                              always_jids = excluded.always_jids, never_jids = excluded.never_jids`),
      deletePrefs: db.prepare('DELETE FROM mam_prefs WHERE owner = ?'),
      maxSeq: db.prepare('SELECT max(seq) FROM mam_row').pluck(),
    };
    this.begin = db.prepare('BEGIN');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    // One step of bringing an archive's postings up to date, read and written in one
    // transaction (so two searches of one archive never index a message twice); returns how
    // many messages it indexed.
    this.indexTextStep = db.transaction((ownerId: number, owner: string) => {
      const upto = (this.stmts.textDone.get(ownerId) as number | undefined) ?? 0;
      let last = upto;
      let indexed = 0;
      for (const row of this.archiveRows(ownerId, ALL_PEERS, upto, MAX_SEQ, false)) {
        const fts = ftsWords(owner, this.textOf(row.xml));
        if (fts !== '') this.stmts.insertFts.run(2 * row.seq + sideOf(row, ownerId)!, fts);
        last = row.seq;
        if (++indexed === TEXT_INDEX_STEP) break;
      }
      if (last > upto) this.stmts.setTextDone.run(ownerId, last);
      return indexed;
    });
    this.removeSeqs = db.transaction((seqs: readonly number[]) => {
      for (const seq of seqs) {
        this.stmts.deleteFts.run(2 * seq);
        this.stmts.deleteFts.run(2 * seq + 1);
        this.stmts.deleteSeq.run(seq);
      }
    });
    // An owner's side of each row goes; a row that no archive has any more goes with it.
    this.removeAll = db.transaction((owner: string) => {
      const id = this.jidId(owner, false);
      if (id !== undefined) {
        for (const seq of this.archiveSeqs(id, ALL_PEERS, 0, MAX_SEQ, false)) {
          const row = this.stmts.sides.get(seq) as Sides | undefined;
          if (row === undefined) continue;
          const side: 0 | 1 | undefined = sideOf(row, id);
          if (side === undefined) continue;
          this.stmts.deleteFts.run(2 * seq + side);
          // The row goes when no other archive holds it (a message to oneself: both sides are this one's).
          const [otherId, otherNonce] = side === 0 ? [row.to_id, row.to_nonce] : [row.from_id, row.from_nonce];
          if (otherNonce === null || otherId === id) {
            this.stmts.deleteFts.run(2 * seq + 1 - side);
            this.stmts.deleteSeq.run(seq);
          } else if (side === 0) this.stmts.leaveSender.run(seq);
          else this.stmts.leaveRecipient.run(seq);
        }
        this.stmts.deleteSpans.run(id);
        this.stmts.deleteTextDone.run(id);
      }
      this.stmts.deletePrefs.run(owner);
    });
    this.key = db.prepare('SELECT key FROM mam_key WHERE id = 1').pluck().get() as Buffer;
    this.ids = new IdCodec(this.key);
    this.allocator = new IdAllocator(this.ids, this.firstFreeSeq());
  }

  /** The key archive ids are encrypted with (see IdCodec). */
  readonly key: Buffer;

  /** The sequence number after the highest one written (ids handed out by others start here). */
  firstFreeSeq(): number {
    return ((this.stmts.maxSeq.get() as number | null) ?? 0) + 1;
  }

  /**
   * Queues the message and returns its id at once. Queued messages are written together,
   * when the flush policy says (time after the first of them, or queue length): one commit (and
   * its fsync) then carries hundreds of messages. Reads write the queue first.
   */
  append(entry: NewArchiveEntry): string {
    const id = this.appended.append(this.allocator, entry);
    this.queue(1);
    return id;
  }

  /**
   * Queues packed messages (batch.ts) under ids handed out elsewhere (IdAllocator over this
   * store's key, from firstFreeSeq() on); sequence numbers must arrive in increasing order.
   */
  enqueueBatch(data: Uint8Array, count: number): void {
    this.handedOver.push(data);
    // Written at once, in a transaction that flushNow commits: the work of a transaction is
    // spread over its hand-overs instead of coming all at once at the commit.
    this.writeRows(data);
    this.queue(count);
  }

  private queue(count: number): void {
    this.queued += count;
    if (this.queued >= this.flushPolicy.count) this.flushNow();
    else this.scheduled ??= setTimeout(() => this.flushNow(), this.flushPolicy.ms);
  }

  /**
   * Inserts a batch's rows in the open transaction (begun here when none is), noting their
   * spans for the commit. After a failure, nothing more is written until flushNow reports it.
   */
  private writeRows(data: Uint8Array): void {
    if (this.failed !== undefined) return;
    const args = this.rowArgs;
    let rows = 0;
    try {
      if (!this.db.inTransaction) this.begin.run();
      const spans = this.openSpans;
      const r = new BatchReader(data);
      while (r.next()) {
        const seq = r.seq;
        const owner = this.jidId(r.owner, true);
        const peer = this.jidId(r.withBare, true);
        // Archive order is arrival order; timestamps follow it, so a clock step backwards (or
        // an older 'at' from a caller) cannot put a new message before ones already archived.
        const ts = Math.max(r.ts, this.lastTs ?? this.newestTs()); // whole ms: the batch keeps no fraction
        this.lastTs = ts;
        const a = ROW_ARGS * rows;
        args[a] = seq;
        args[a + 1] = ts;
        if (r.direction === 'out') {
          args[a + 2] = owner;
          args[a + 3] = r.pairResource;
          args[a + 4] = r.nonce;
          args[a + 5] = peer;
          args[a + 6] = r.withResource;
          args[a + 7] = r.pairNonce === -1 ? null : r.pairNonce;
        } else {
          args[a + 2] = peer;
          args[a + 3] = r.withResource;
          args[a + 4] = null;
          args[a + 5] = owner;
          args[a + 6] = '';
          args[a + 7] = r.nonce;
        }
        args[a + 8] = r.xml;
        if (++rows === ROWS_PER_INSERT) {
          // Spread: better-sqlite3 reads an array argument element by element through V8's
          // generic property lookup, a tenth of this thread's work (0.15-0.2 µs a message).
          this.stmts.insertMany.run(...args);
          rows = 0;
        }
        spans.add(owner, peer, seq);
        if (r.pairNonce !== -1) spans.add(peer, owner, seq);
      }
      for (let i = 0; i < rows; i++) this.stmts.insert.run(args.slice(ROW_ARGS * i, ROW_ARGS * (i + 1)));
    } catch (err) {
      this.failed = err;
    } finally {
      args.fill(null); // holds no batch past its rows
    }
  }

  /** Commits the open transaction: the queued messages' rows, then their spans. */
  flushNow(): void {
    if (this.scheduled !== undefined) {
      clearTimeout(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.queued === 0 && !this.db.inTransaction) return;
    const handedOver = this.handedOver;
    const own = this.appended.count > 0 ? this.appended.take() : undefined;
    const count = this.queued;
    this.handedOver = [];
    this.queued = 0;
    if (own !== undefined) this.writeRows(own);
    if (this.failed === undefined && this.db.inTransaction) {
      try {
        for (const [owner, peer, seqs] of this.openSpans.spans()) {
          this.stmts.insertSpan.run(owner, peer, seqs[0], seqs[seqs.length - 1], seqs.length, packSeqs(seqs));
        }
        this.commit.run();
      } catch (err) {
        this.failed = err;
      }
    }
    const failed = this.failed;
    if (failed !== undefined) {
      // Nothing sensible to retry into (full disk, closed database); the ids stay unused.
      if (this.db.inTransaction) {
        try {
          this.rollback.run();
        } catch {
          // SQLite ended it already (some errors roll back by themselves)
        }
      }
      this.lastTs = undefined;
      this.jidIds.clear(); // numbers handed out inside the failed transaction are gone
      this.onError(failed, count);
    }
    this.failed = undefined;
    this.openSpans = new SpanCollector();
    if (own !== undefined) this.appended.recycle(own);
    this.onWritten?.(count, handedOver);
  }

  async flush(): Promise<void> {
    this.flushNow();
  }

  /** Writes the queue; the database is the caller's to close. */
  async close(): Promise<void> {
    this.flushNow();
  }

  async locate(owner: string, id: string): Promise<Cursor | undefined> {
    const decoded = this.ids.decode(id);
    if (decoded === undefined) return undefined;
    this.flushNow();
    const ownerId = this.jidId(owner, false);
    if (ownerId === undefined) return undefined;
    const row = this.stmts.locate.get(decoded.seq, ownerId, decoded.nonce, ownerId, decoded.nonce) as Cursor | undefined;
    return row === undefined ? undefined : { seq: row.seq, ts: row.ts };
  }

  async page(filter: ArchiveFilter, page: PageRequest): Promise<ArchivedMessage[]> {
    this.flushNow();
    if (filter.text !== undefined) await this.indexText(filter.owner);
    const q = this.select(filter, page.after, page.before);
    if (q === undefined) return [];
    const ownerId = this.jidId(filter.owner, false)!;
    if (q.kind === 'archive') {
      const rows: Row[] = [];
      let skip = page.offset ?? 0;
      for (const row of this.archiveRows(ownerId, q.peerId, q.lo, q.hi, page.backward)) {
        if (!hasResource(row, ownerId, q.withResource)) continue;
        if (skip > 0) skip--;
        else if (rows.push(row) === page.limit) break;
      }
      return rows.map((r) => this.toMessage(r, ownerId));
    }
    const order = page.backward ? 'DESC' : 'ASC';
    const orderBy = q.kind === 'fts' ? `f.rowid ${order}` : `m.seq ${order}`;
    const sql = `SELECT ${ROW} ${q.rows.from} WHERE ${q.rows.where} ORDER BY ${orderBy} LIMIT ? OFFSET ?`;
    return (this.prepared(sql).all(...q.rows.params, page.limit, page.offset ?? 0) as Row[]).map((r) => this.toMessage(r, ownerId));
  }

  async count(filter: ArchiveFilter, cap: number, before?: Cursor): Promise<number | undefined> {
    this.flushNow();
    if (filter.text !== undefined) await this.indexText(filter.owner);
    const q = this.select(filter, undefined, before);
    if (q === undefined) return 0;
    if (q.kind === 'archive') {
      const ownerId = this.jidId(filter.owner, false)!;
      let n = 0;
      if (q.withResource !== undefined) {
        for (const row of this.archiveRows(ownerId, q.peerId, q.lo, q.hi, false)) {
          if (hasResource(row, ownerId, q.withResource) && ++n > cap) return undefined;
        }
        return n;
      }
      // Spans wholly inside the range count by their n; the one across its start, and the
      // one across its end, seq by seq.
      const lo = Math.max(q.lo, this.oldestSeq() - 1);
      n = (this.stmts.spanCount.get(ownerId, q.peerId, lo, q.hi, q.hi, cap + 1) as number | null) ?? 0;
      const atStart = this.stmts.spanAtOrBefore.get(ownerId, q.peerId, lo) as Span | undefined;
      const atEnd = this.stmts.spanAtOrBefore.get(ownerId, q.peerId, q.hi - 1) as Span | undefined;
      for (const span of [atStart, atEnd !== undefined && atEnd.first_seq > lo && atEnd.last_seq >= q.hi ? atEnd : undefined]) {
        if (span !== undefined) for (const seq of unpackSeqs(span)) if (seq > lo && seq < q.hi) n++;
      }
      return n > cap ? undefined : n;
    }
    // A search with no other filter counts postings alone: they are the owner's already.
    const counted = q.postings ?? q.rows;
    const sql = `SELECT count(*) FROM (SELECT 1 ${counted.from} WHERE ${counted.where} LIMIT ?)`;
    const n = this.prepared(sql).pluck().get(...counted.params, cap + 1) as number;
    return n > cap ? undefined : n;
  }

  async bounds(owner: string): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined> {
    this.flushNow();
    const ownerId = this.jidId(owner, false);
    if (ownerId === undefined) return undefined;
    const first = this.archiveRows(ownerId, ALL_PEERS, 0, MAX_SEQ, false).next().value;
    const last = this.archiveRows(ownerId, ALL_PEERS, 0, MAX_SEQ, true).next().value;
    if (!first || !last) return undefined;
    return { first: this.toMessage(first, ownerId), last: this.toMessage(last, ownerId) };
  }

  async prefs(owner: string): Promise<ArchivePrefs | undefined> {
    const row = this.stmts.prefs.get(owner) as { default_mode: ArchivePrefs['default']; always_jids: string; never_jids: string } | undefined;
    if (row === undefined) return undefined;
    return { default: row.default_mode, always: JSON.parse(row.always_jids) as string[], never: JSON.parse(row.never_jids) as string[] };
  }

  async setPrefs(owner: string, prefs: ArchivePrefs): Promise<void> {
    this.flushNow(); // not inside the open transaction, whose failure would take it along
    this.stmts.setPrefs.run(owner, prefs.default, JSON.stringify(prefs.always), JSON.stringify(prefs.never));
  }

  async expire(cutoff: number, limit: number): Promise<number> {
    this.flushNow();
    // Timestamps never go down along the sequence, so the expired messages are at its low
    // end: walk it from the start while batches still hold expired messages. This deletes each
    // archive's oldest messages first and never leaves a hole (XEP-0313 §3.2).
    let removed = 0;
    let after = 0;
    while (removed < limit) {
      const batch = this.stmts.oldest.all(after, Math.min(1000, limit - removed)) as { seq: number; ts: number }[];
      if (batch.length === 0) break;
      const expired = batch.filter((r) => r.ts < cutoff).map((r) => r.seq);
      if (expired.length === 0) break;
      this.removeSeqs(expired);
      removed += expired.length;
      after = batch[batch.length - 1]!.seq;
    }
    // Spans left with expired messages alone; the others skip them as they are read.
    if (removed > 0) this.stmts.deleteSpansBefore.run(this.oldestSeq());
    return removed;
  }

  async removeOwner(owner: string): Promise<void> {
    this.flushNow();
    this.removeAll(owner);
  }

  // ---- internals ----------------------------------------------------------------------

  /**
   * Brings the owner's full-text postings up to date. Archiving a message does not index its
   * words (that was a third of the cost of archiving, for searches that most archives never
   * get): an archive is indexed when it is searched, in steps with other work in between.
   */
  private async indexText(owner: string): Promise<void> {
    for (;;) {
      this.flushNow();
      const ownerId = this.jidId(owner, false);
      if (ownerId === undefined || this.indexTextStep(ownerId, owner) < TEXT_INDEX_STEP) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * The sequence numbers of an archive (its messages with one peer, or with ALL_PEERS)
   * strictly between lo and hi, oldest first or newest first, read from its spans a few
   * at a time. Expired messages (below the oldest row) are left out.
   */
  private *archiveSeqs(ownerId: number, peerId: number, lo: number, hi: number, backward: boolean): Generator<number> {
    lo = Math.max(lo, this.oldestSeq() - 1);
    if (backward) {
      for (let below = hi; ; ) {
        const spans = this.stmts.spansDown.all(ownerId, peerId, below, SPAN_PAGE) as Span[];
        for (const span of spans) {
          if (span.last_seq <= lo) return;
          const seqs = unpackSeqs(span);
          for (let i = seqs.length - 1; i >= 0; i--) {
            const seq = seqs[i]!;
            if (seq <= lo) return;
            if (seq < hi) yield seq;
          }
        }
        if (spans.length < SPAN_PAGE) return;
        below = spans[spans.length - 1]!.first_seq;
      }
    }
    // Spans of one archive (and peer) do not overlap: the one holding lo + 1 starts at or before it.
    for (let from = (this.stmts.spanAtOrBefore.get(ownerId, peerId, lo + 1) as Span | undefined)?.first_seq ?? lo + 1; ; ) {
      const spans = this.stmts.spansUp.all(ownerId, peerId, from, SPAN_PAGE) as Span[];
      for (const span of spans) {
        for (const seq of unpackSeqs(span)) {
          if (seq >= hi) return;
          if (seq > lo) yield seq;
        }
      }
      if (spans.length < SPAN_PAGE) return;
      from = spans[spans.length - 1]!.first_seq + 1;
    }
  }

  /** The rows of archiveSeqs. */
  private *archiveRows(ownerId: number, peerId: number, lo: number, hi: number, backward: boolean): Generator<FullRow> {
    for (const seq of this.archiveSeqs(ownerId, peerId, lo, hi, backward)) {
      const row = this.stmts.row.get(seq) as FullRow | undefined;
      if (row !== undefined && sideOf(row, ownerId) !== undefined) yield row;
    }
  }

  /**
   * The lowest sequence number of the rows: spans may still hold lower ones, of expired
   * messages (expiry deletes the oldest rows, and a row with an archive left is never deleted).
   */
  private oldestSeq(): number {
    return (this.stmts.oldestSeq.get() as number | undefined) ?? MAX_SEQ;
  }

  /** A row as a message of the archive of ownerId: with the nonce of that side. */
  private toMessage(row: Row, ownerId: number): ArchivedMessage {
    const nonce = row.from_id === ownerId && row.from_nonce !== null ? row.from_nonce : row.to_nonce!;
    return { id: this.ids.encode(row.seq, nonce), ts: row.ts, xml: row.xml };
  }

  /** The newest row's timestamp (inside a write: the rows written before it are visible). */
  private newestTs(): number {
    return (this.stmts.newest.get() as Cursor | undefined)?.ts ?? MIN_TS;
  }

  /**
   * The first sequence number of a row stamped `ts` or later, or undefined: a binary search,
   * as timestamps never go down along the sequence. Rows may be missing (deleted), so each
   * probe reads the first row at or after its number.
   */
  private firstSeqFrom(ts: number): number | undefined {
    const newest = this.stmts.newest.get() as Cursor | undefined;
    if (newest === undefined || newest.ts < ts) return undefined;
    let found = newest.seq;
    let lo = 0;
    let hi = found - 1;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = this.stmts.rowFrom.get(mid) as Cursor; // there is one: `found` at least
      if (row.seq >= found) hi = mid - 1;
      else if (row.ts >= ts) {
        found = row.seq;
        hi = mid - 1;
      } else lo = row.seq + 1;
    }
    return found;
  }

  /** The dictionary number of a JID; with `create`, a new one when it has none (inside a write). */
  private jidId(jid: string, create: true): number;
  private jidId(jid: string, create: false): number | undefined;
  private jidId(jid: string, create: boolean): number | undefined {
    let id = this.jidIds.get(jid);
    if (id !== undefined) return id;
    id = (this.stmts.jidId.get(jid) as number | undefined) ?? (create ? (this.stmts.addJid.get(jid) as number) : undefined);
    if (id === undefined) return undefined;
    if (this.jidIds.size >= JID_ID_CACHE) this.jidIds.delete(this.jidIds.keys().next().value!);
    this.jidIds.set(jid, id);
    return id;
  }

  private prepared(sql: string): Statement<unknown[]> {
    let st = this.shapes.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.shapes.set(sql, st);
    }
    return st;
  }

  /**
   * What a filter plus extra paging bounds selects. Three shapes: listed ids (a join from the
   * list), full text (driven by the FTS index in sequence order) and the rest: the spans of
   * the archive, or of the conversation. Every bound is a range of sequence numbers, exclusive
   * at both ends: timestamps never go down along the sequence, so a time bound is the sequence
   * number of the first row past it. Undefined when nothing can match.
   */
  private select(filter: ArchiveFilter, after: Cursor | undefined, before: Cursor | undefined): Selection | undefined {
    let seqLo = later(filter.after, after)?.seq ?? 0;
    let seqHi = earlier(filter.before, before)?.seq ?? MAX_SEQ;
    if (filter.start !== undefined) {
      const first = this.firstSeqFrom(filter.start);
      if (first === undefined) return undefined;
      seqLo = Math.max(seqLo, first - 1);
    }
    if (filter.end !== undefined) seqHi = Math.min(seqHi, this.firstSeqFrom(Math.floor(filter.end) + 1) ?? MAX_SEQ);
    if (seqHi - seqLo <= 1) return undefined;
    let match: string | undefined;
    if (filter.text !== undefined) {
      match = ftsQuery(filter.owner, filter.text);
      if (match === undefined) return undefined;
    }
    const ownerId = this.jidId(filter.owner, false);
    if (ownerId === undefined) return undefined; // no archive yet
    let withId: number | undefined;
    if (filter.withBare !== undefined) {
      withId = this.jidId(filter.withBare, false);
      if (withId === undefined) return undefined; // never archived with this JID
    }
    if (filter.only === undefined && match === undefined) {
      return { kind: 'archive', peerId: withId ?? ALL_PEERS, withResource: filter.withResource, lo: seqLo, hi: seqHi };
    }
    const where: string[] = [OWNED];
    const params: unknown[] = [ownerId, ownerId];
    if (withId !== undefined) {
      where.push('m.pair = ?');
      params.push(pairKey(ownerId, withId));
      if (filter.withResource !== undefined) {
        // The other side's resource: the recipient's when the owner sent it.
        where.push(`(CASE WHEN ${SENDER_SIDE} THEN m.to_resource ELSE m.from_resource END) = ?`);
        params.push(ownerId, filter.withResource);
      }
    }
    const bounds = (): void => {
      where.push('m.seq > ? AND m.seq < ?');
      params.push(seqLo, seqHi);
    };
    if (filter.only !== undefined) {
      if (match !== undefined) {
        where.push('(2 * m.seq IN (SELECT rowid FROM mam_fts WHERE mam_fts MATCH ?) OR 2 * m.seq + 1 IN (SELECT rowid FROM mam_fts WHERE mam_fts MATCH ?))');
        params.push(match, match);
      }
      bounds();
      return {
        kind: 'ids',
        rows: { from: 'FROM json_each(?) j CROSS JOIN mam_row m ON m.seq = j.value', where: where.join(' AND '), params: [JSON.stringify(filter.only.map((c) => c.seq)), ...params] },
      };
    }
    // Full-text rows are seq * 2 + side, in order: the bounds limit the postings read.
    const postings = 'f.mam_fts MATCH ? AND f.rowid > ? AND f.rowid < ?';
    const postingParams = [match, 2 * seqLo + 1, 2 * seqHi];
    return {
      kind: 'fts',
      rows: { from: 'FROM mam_fts f CROSS JOIN mam_row m ON m.seq = f.rowid >> 1', where: [postings, ...where].join(' AND '), params: [...postingParams, ...params] },
      postings: withId === undefined ? { from: 'FROM mam_fts f', where: postings, params: postingParams } : undefined,
    };
  }
}

interface Query {
  from: string;
  where: string;
  params: unknown[];
}

/** What a filter selects: rows read through SQL (listed ids, full text), or an archive's spans. */
type Selection =
  | {
      kind: 'ids' | 'fts';
      rows: Query;
      /** For a search without other row filters: the same set, from the FTS table alone. */
      postings?: Query;
    }
  | {
      kind: 'archive';
      /** The conversation's peer, or ALL_PEERS. */
      peerId: number;
      /** Only messages with this resource of the peer. */
      withResource: string | undefined;
      /** Sequence bounds, exclusive. */
      lo: number;
      hi: number;
    };

/** Whether row is with `resource` of the peer (the recipient's when ownerId sent it); any without one. */
function hasResource(row: FullRow, ownerId: number, resource: string | undefined): boolean {
  return resource === undefined || (sideOf(row, ownerId) === 0 ? row.to_resource : row.from_resource) === resource;
}


function later(a: Cursor | undefined, b: Cursor | undefined): Cursor | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.seq >= b.seq ? a : b;
}

function earlier(a: Cursor | undefined, b: Cursor | undefined): Cursor | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.seq <= b.seq ? a : b;
}
