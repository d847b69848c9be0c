import type { Element } from '../../src/xml/element';
import {
  clearSerializationTap, elementBytesBound, setSerializationTap, writeClosing, writeElement, writeUtf8, type SerializationSink,
} from '../../src/xml/write-bytes';
import type { NewArchiveEntry } from './store';

/**
 * A message as a packed batch gives it back: the XML as UTF-8, a view of the batch (SQLite
 * takes the bytes as they are, without a JavaScript string in between).
 */
export type PackedEntry = Omit<NewArchiveEntry, 'xml' | 'ts'> & { readonly ts: number; readonly xml: Buffer };

/**
 * The recipient's side of a message archived for its sender just before: the same row of the
 * archive (see the mam_row table), under the recipient's own nonce.
 */
export interface PairedSide {
  readonly nonce: number;
  /** The sender's resource (the recipient's "with"). */
  readonly withResource: string;
}

/** Hands out archive ids (store.ts IdAllocator); seq and nonce are those of the id returned last. */
export interface IdSource {
  next(): string;
  pair(): string;
  readonly seq: number;
  readonly nonce: number;
}

/**
 * Buffers kept for reuse: the archive's thread gives them back after each transaction, which
 * holds up to its flush policy's worth of messages (40 000, some 6-10 MB packed).
 */
const MAX_SPARES = 32;

/** XML length that means "the same XML as the record before". */
const SAME_XML = 0xffffffff;
/** The high bit of a string's 2-byte header: the rest is the number of a string written before. */
const STRING_REF = 0x8000;
/** Strings a batch numbers (refs are 15 bits); later new ones are written out each time. */
const MAX_STRINGS = STRING_REF;

/** Latest time a record holds (ms since 1970, 6 bytes): some 8900 years on. */
const MAX_TS = 2 ** 48 - 1;

/** First byte of a record: a message received or one sent. */
const IN = 0;
const OUT = 1;
/** First byte of a record's parts after its header: the recipient's side of its message, its XML. */
const PAIR = 2;
const XML = 3;

/**
 * Messages to archive, packed into one buffer to hand to the archive's writer thread: the
 * buffer moves between threads without a copy, and a queued message holds no JavaScript
 * objects, so the routing thread's garbage collector never has to copy or promote it.
 *
 * One record per message: kind (1 byte: IN or OUT), seq (6 bytes), nonce (6), ts (6, whole ms),
 * then owner, peer and peer resource (strings, below); for a message between two accounts of
 * the server, a PAIR part for its recipient: PAIR, nonce (6) and the sender's resource (a
 * string); then the XML: XML, 4-byte length and UTF-8, or SAME_XML when the message is the
 * element of the record before. Big-endian.
 *
 * A string is written once per batch: 2 bytes of length (below STRING_REF) and its UTF-8, which
 * makes it the batch's next string; after that, 2 bytes STRING_REF | its number. A batch names
 * the same few hundred JIDs and resources thousands of times: a Map lookup costs the routing
 * thread less than copying the characters, and the archive's thread decodes each string once
 * per batch instead of finding it again by its bytes.
 *
 * An element's XML is written last, when the record is done with: taken from its serialisation
 * for delivery when that comes first (write-bytes.ts, setSerializationTap), else serialised
 * as it was when added.
 */
export class ArchiveBatch {
  private buf: Buffer;
  private used = 0;
  /**
   * The element the last record was written from, while it is in this batch, with its
   * children as they were: a hook between the two appends may have changed them (carbons
   * takes <private/> out before delivery), and then the element is written again.
   */
  private lastElement: Element | undefined;
  private lastChildren: Element['children'] | undefined;
  private lastChildCount = 0;
  /** The last record, while a PAIR part may still follow it. */
  private lastOut: NewArchiveEntry | undefined;
  /** The element of the last record, while its XML is still to be written. */
  private pending: Element | undefined;
  /** Buffers handed out by take() and given back, to take next. */
  private readonly spares: ArrayBuffer[] = [];
  /** The strings written in this batch, by number. */
  private readonly strings = new Map<string, number>();
  private stringCount = 0;
  /** Messages in the batch. */
  count = 0;

  constructor(private readonly size = 256 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  get bytes(): number {
    return this.used;
  }

  add(seq: number, nonce: number, entry: NewArchiveEntry): void {
    this.writePending();
    const { xml } = entry;
    const same = this.isLastElement(xml);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const xmlMost = typeof xml === 'string' ? 3 * xml.length : 0;
    const most = 32 + 3 * (entry.owner.length + entry.withBare.length + entry.withResource.length) + xmlMost;
    if (this.used + most > this.buf.length) this.grow(most);
    const b = this.buf;
    let o = this.used;
    b[o] = entry.direction === 'out' ? OUT : IN;
    writeUint48(b, o + 1, seq);
    writeUint48(b, o + 7, nonce);
    writeUint48(b, o + 13, Math.min(MAX_TS, Math.max(0, Math.trunc(entry.ts ?? Date.now()))));
    o += 19;
    o = this.writeString(b, o, entry.owner);
    o = this.writeString(b, o, entry.withBare);
    o = this.writeString(b, o, entry.withResource);
    if (same) {
      b[o] = XML;
      writeUint32(b, o + 1, SAME_XML);
      o += 5;
    } else if (typeof xml === 'string') {
      b[o] = XML;
      const n = b.write(xml, o + 5, 'utf8');
      writeUint32(b, o + 1, n);
      o += 5 + n;
    } else {
      this.pending = xml;
      setSerializationTap(xml, xml.children.length, this.sink);
    }
    if (typeof xml === 'string') this.lastElement = this.lastChildren = undefined;
    else {
      this.lastElement = xml;
      this.lastChildren = xml.children;
      this.lastChildCount = xml.children.length;
    }
    this.lastOut = entry.direction === 'out' ? entry : undefined;
    this.used = o;
    this.count++;
  }

  /**
   * Where the pending element's serialisation for its delivery is written: in place, as the
   * XML part of the last record, whose end tag then goes over the children added since.
   */
  private readonly sink: SerializationSink & { at: number } = {
    at: 0,
    open: (most: number): Buffer => {
      if (this.used + 5 + most > this.buf.length) this.grow(5 + most);
      this.sink.at = this.used + 5;
      return this.buf;
    },
    close: (cut: number, end: number): void => {
      const el = this.pending;
      if (el === undefined) return; // not expected: the bytes are left unused
      this.pending = undefined;
      const b = this.buf;
      const o = this.used;
      b[o] = XML;
      const xmlEnd = cut < end ? writeClosing(b, cut, el) : cut;
      writeUint32(b, o + 1, xmlEnd - o - 5);
      this.used = xmlEnd;
    },
  };

  /** Writes the XML of the last record, if still to be written, as the element was when added. */
  private writePending(): void {
    const el = this.pending;
    if (el === undefined) return;
    this.pending = undefined;
    clearSerializationTap(el);
    const children = this.lastChildren!;
    const count = this.lastChildCount;
    const most = 5 + elementBytesBound(el, children, count);
    if (this.used + most > this.buf.length) this.grow(most);
    const o = this.used;
    this.buf[o] = XML;
    const end = writeElement(this.buf, o + 5, el, children, count);
    writeUint32(this.buf, o + 1, end - o - 5);
    this.used = end;
  }

  /**
   * Gives entry its archive id and packs it. The recipient's side of the message in the
   * record before goes into that record's row, under the same sequence number.
   */
  append(ids: IdSource, entry: NewArchiveEntry): string {
    if (this.pairs(entry)) {
      const id = ids.pair();
      this.addPair(ids.nonce, entry.withResource);
      return id;
    }
    const id = ids.next();
    this.add(ids.seq, ids.nonce, entry);
    return id;
  }

  /**
   * Whether entry is the recipient's side of the message in the last record: the same
   * element, unchanged since and not written yet, received by that record's peer from that
   * record's owner.
   */
  pairs(entry: NewArchiveEntry): boolean {
    const out = this.lastOut;
    return out !== undefined && entry.direction === 'in' && entry.xml === this.pending && this.isLastElement(entry.xml)
      && entry.owner === out.withBare && entry.withBare === out.owner;
  }

  /** xml is the element the last record was written from, with its children as they were then. */
  private isLastElement(xml: NewArchiveEntry['xml']): boolean {
    return typeof xml !== 'string' && xml === this.lastElement
      && xml.children === this.lastChildren && xml.children.length === this.lastChildCount;
  }

  /** Adds the recipient's side of the last record (when pairs() said so). */
  addPair(nonce: number, withResource: string): void {
    const most = 9 + 3 * withResource.length;
    if (this.used + most > this.buf.length) this.grow(most);
    const b = this.buf;
    b[this.used] = PAIR;
    writeUint48(b, this.used + 1, nonce);
    this.used = this.writeString(b, this.used + 7, withResource);
    this.lastOut = undefined;
    this.count++;
  }

  /**
   * The packed messages, in the batch's own buffer (whose ArrayBuffer can be transferred to
   * another thread), and an empty batch from here on, in a recycled buffer when there is one.
   * Copying the messages out into a new ArrayBuffer for each hand-over cost the routing thread
   * 0.3 µs a message, in the copy and in the collections its external memory set off.
   */
  take(): Uint8Array {
    this.writePending();
    const out = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.used);
    const spare = this.spares.pop();
    this.buf = spare !== undefined ? Buffer.from(spare) : Buffer.allocUnsafeSlow(this.size);
    this.used = 0;
    this.count = 0;
    this.lastElement = this.lastChildren = this.lastOut = undefined;
    this.strings.clear();
    this.stringCount = 0;
    return out;
  }

  /** Gives back a buffer take() handed out, once its messages are read. */
  recycle(data: Uint8Array): void {
    if (this.spares.length < MAX_SPARES && data.buffer.byteLength >= this.size) this.spares.push(data.buffer as ArrayBuffer);
  }

  /** s at b[o...] (room for 2 + 3 * s.length bytes): a reference when written before in this batch. */
  private writeString(b: Buffer, o: number, s: string): number {
    const ref = this.strings.get(s);
    if (ref !== undefined) {
      b[o] = (STRING_REF | ref) >>> 8;
      b[o + 1] = ref & 0xff;
      return o + 2;
    }
    const n = writeUtf8(b, o + 2, s) - o - 2;
    if (n >= STRING_REF) throw new RangeError(`archive batch: a JID longer than ${STRING_REF - 1} bytes`);
    b[o] = n >>> 8;
    b[o + 1] = n & 0xff;
    // Every string written out has the next number, in the reader's count too.
    if (this.stringCount < MAX_STRINGS) this.strings.set(s, this.stringCount);
    this.stringCount++;
    return o + 2 + n;
  }

  private grow(most: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.size, 2 * this.buf.length, this.used + most));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }
}

/** A message of a packed batch: with `pair`, archived for its recipient too. */
export interface PackedMessage {
  seq: number;
  nonce: number;
  entry: PackedEntry;
  pair?: PairedSide;
}

/**
 * Reads a packed batch record by record into its own fields, without an object per record: the
 * archive's writer reads every archived message this way (a generator yielding an object per
 * record, with a string per field, was a fifth of that thread's work).
 */
export class BatchReader {
  private readonly b: Buffer;
  private o = 0;
  direction: 'in' | 'out' = 'in';
  seq = 0;
  nonce = 0;
  ts = 0;
  owner = '';
  withBare = '';
  withResource = '';
  /** The recipient's side, when the record has a PAIR part: its nonce (else -1) and the sender's resource. */
  pairNonce = -1;
  pairResource = '';
  xml: Buffer;

  /** The batch's strings so far, by number. */
  private readonly strings: string[] = [];

  constructor(data: Uint8Array) {
    this.b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.xml = this.b.subarray(0, 0);
  }

  /** The string at b[o...]; this.o is left after it. */
  private string(b: Buffer, o: number): string {
    const h = (b[o]! << 8) | b[o + 1]!;
    if (h & STRING_REF) {
      this.o = o + 2;
      return this.strings[h & ~STRING_REF]!;
    }
    const s = b.toString('utf8', o + 2, o + 2 + h);
    this.strings.push(s);
    this.o = o + 2 + h;
    return s;
  }

  /** Reads the next record into the fields; false at the end. */
  next(): boolean {
    const b = this.b;
    let o = this.o;
    if (o >= b.length) return false;
    this.direction = b[o] === OUT ? 'out' : 'in';
    this.seq = readUint48(b, o + 1);
    this.nonce = readUint48(b, o + 7);
    this.ts = readUint48(b, o + 13);
    this.owner = this.string(b, o + 19);
    this.withBare = this.string(b, this.o);
    this.withResource = this.string(b, this.o);
    o = this.o;
    if (b[o] === PAIR) {
      this.pairNonce = readUint48(b, o + 1);
      this.pairResource = this.string(b, o + 7);
      o = this.o;
    } else {
      this.pairNonce = -1;
      this.pairResource = '';
    }
    const n = readUint32(b, o + 1); // after XML
    o += 5;
    if (n !== SAME_XML) {
      this.xml = b.subarray(o, o + n);
      o += n;
    }
    this.o = o;
    return true;
  }
}

/** The messages of a packed batch, in order, as objects; a PAIR part comes as the record's `pair`. */
export function* readBatch(data: Uint8Array): Generator<PackedMessage> {
  const r = new BatchReader(data);
  while (r.next()) {
    const { seq, nonce, owner, withBare, withResource, direction, ts, xml } = r;
    const message: PackedMessage = { seq, nonce, entry: { owner, withBare, withResource, direction, ts, xml } };
    if (r.pairNonce !== -1) message.pair = { nonce: r.pairNonce, withResource: r.pairResource };
    yield message;
  }
}

// Integers written and read byte by byte. Buffer's own methods (writeUIntBE and the rest) cost
// more in the routing thread's optimised code than the bytes: each call is a generic property
// lookup (V8 does not inline the load of a Buffer method) and then checks of its arguments.

/** v, an integer in [0, 2^48), as 6 bytes big-endian at b[o]. */
export function writeUint48(b: Uint8Array, o: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  b[o] = hi >>> 8;
  b[o + 1] = hi;
  b[o + 2] = lo >>> 24;
  b[o + 3] = lo >>> 16;
  b[o + 4] = lo >>> 8;
  b[o + 5] = lo;
}

export function readUint48(b: Uint8Array, o: number): number {
  return ((b[o]! << 8) | b[o + 1]!) * 0x1_0000_0000 + ((b[o + 2]! << 24) >>> 0) + ((b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!);
}

function writeUint32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

function readUint32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}
