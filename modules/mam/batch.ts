import type { Element } from '../../src/xml/element';
import { elementBytesBound, writeElement, writeUtf8 } from '../../src/xml/write-bytes';
import type { NewArchiveEntry } from './store';

/** A message as a packed batch gives it back: the XML as text. */
export type PackedEntry = NewArchiveEntry & { readonly xml: string };

/** XML length that means "the same XML as the record before". */
const SAME_XML = 0xffffffff;

/**
 * Messages to archive, packed into one buffer to hand to the archive's writer thread: the
 * buffer moves between threads without a copy, and a queued message holds no JavaScript
 * objects, so the routing thread's garbage collector never has to copy or promote it.
 *
 * One record per message: seq (6 bytes), nonce (6), ts (float64), direction (1: 1 = out),
 * then owner, peer and peer resource (2-byte length + UTF-8 each) and the XML (4-byte length
 * + UTF-8, or SAME_XML when the message is the element of the record before: the sender's and
 * the recipient's copies of a local message); big-endian.
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
  /** Messages in the batch. */
  count = 0;

  constructor(private readonly size = 256 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  get bytes(): number {
    return this.used;
  }

  add(seq: number, nonce: number, entry: NewArchiveEntry): void {
    const { xml } = entry;
    const same = typeof xml !== 'string' && xml === this.lastElement
      && xml.children === this.lastChildren && xml.children.length === this.lastChildCount;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const xmlMost = same ? 0 : typeof xml === 'string' ? 3 * xml.length : elementBytesBound(xml);
    const most = 29 + 3 * (entry.owner.length + entry.withBare.length + entry.withResource.length) + xmlMost;
    if (this.used + most > this.buf.length) this.grow(most);
    const b = this.buf;
    let o = this.used;
    b.writeUIntBE(seq, o, 6);
    b.writeUIntBE(nonce, o + 6, 6);
    b.writeDoubleBE(entry.ts, o + 12);
    b[o + 20] = entry.direction === 'out' ? 1 : 0;
    o += 21;
    o = writeString(b, o, entry.owner);
    o = writeString(b, o, entry.withBare);
    o = writeString(b, o, entry.withResource);
    if (same) {
      b.writeUInt32BE(SAME_XML, o);
      o += 4;
    } else if (typeof xml === 'string') {
      const n = b.write(xml, o + 4, 'utf8');
      b.writeUInt32BE(n, o);
      o += 4 + n;
    } else {
      const end = writeElement(b, o + 4, xml);
      b.writeUInt32BE(end - o - 4, o);
      o = end;
    }
    if (typeof xml === 'string') this.lastElement = this.lastChildren = undefined;
    else {
      this.lastElement = xml;
      this.lastChildren = xml.children;
      this.lastChildCount = xml.children.length;
    }
    this.used = o;
    this.count++;
  }

  /** The packed messages (an ArrayBuffer to transfer), and an empty batch from here on. */
  take(): ArrayBuffer {
    const out = this.buf.buffer.slice(this.buf.byteOffset, this.buf.byteOffset + this.used) as ArrayBuffer;
    this.used = 0;
    this.count = 0;
    this.lastElement = this.lastChildren = undefined;
    return out;
  }

  private grow(most: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.size, 2 * this.buf.length, this.used + most));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }
}

function writeString(b: Buffer, o: number, s: string): number {
  const n = writeUtf8(b, o + 2, s) - o - 2;
  if (n > 0xffff) throw new RangeError('archive batch: a JID longer than 65535 bytes');
  b.writeUInt16BE(n, o);
  return o + 2 + n;
}

/** The messages of a packed batch, in order. */
export function* readBatch(data: ArrayBuffer): Generator<{ seq: number; nonce: number; entry: PackedEntry }> {
  const b = Buffer.from(data);
  let o = 0;
  let xml = '';
  while (o < b.length) {
    const seq = b.readUIntBE(o, 6);
    const nonce = b.readUIntBE(o + 6, 6);
    const ts = b.readDoubleBE(o + 12);
    const direction = b[o + 20] === 1 ? 'out' : 'in';
    o += 21;
    const owner = readString(b, o);
    o += 2 + b.readUInt16BE(o);
    const withBare = readString(b, o);
    o += 2 + b.readUInt16BE(o);
    const withResource = readString(b, o);
    o += 2 + b.readUInt16BE(o);
    const n = b.readUInt32BE(o);
    o += 4;
    if (n !== SAME_XML) {
      xml = b.toString('utf8', o, o + n);
      o += n;
    }
    yield { seq, nonce, entry: { owner, withBare, withResource, direction, ts, xml } };
  }
}

function readString(b: Buffer, o: number): string {
  return b.toString('utf8', o + 2, o + 2 + b.readUInt16BE(o));
}
