import type { NewArchiveEntry } from './store';

/**
 * Messages to archive, packed into one buffer to hand to the archive's writer thread: the
 * buffer moves between threads without a copy, and a queued message holds no JavaScript
 * objects, so the routing thread's garbage collector never has to copy or promote it.
 *
 * One record per message: seq (6 bytes), nonce (6), ts (float64), direction (1: 1 = out),
 * then owner, peer and peer resource (2-byte length + UTF-8 each) and the XML (4-byte length
 * + UTF-8); big-endian.
 */
export class ArchiveBatch {
  private buf: Buffer;
  private used = 0;
  /** Messages in the batch. */
  count = 0;

  constructor(private readonly size = 256 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  get bytes(): number {
    return this.used;
  }

  add(seq: number, nonce: number, entry: NewArchiveEntry): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const most = 29 + 3 * (entry.owner.length + entry.withBare.length + entry.withResource.length + entry.xml.length);
    if (this.used + most > this.buf.length) this.grow(most);
    const b = this.buf;
    let o = this.used;
    b.writeUIntBE(seq, o, 6);
    b.writeUIntBE(nonce, o + 6, 6);
    b.writeDoubleBE(entry.ts, o + 12);
    b[o + 20] = entry.direction === 'out' ? 1 : 0;
    o += 21;
    o = writeString(b, o, 2, entry.owner);
    o = writeString(b, o, 2, entry.withBare);
    o = writeString(b, o, 2, entry.withResource);
    o = writeString(b, o, 4, entry.xml);
    this.used = o;
    this.count++;
  }

  /** The packed messages (an ArrayBuffer to transfer), and an empty batch from here on. */
  take(): ArrayBuffer {
    const out = this.buf.buffer.slice(this.buf.byteOffset, this.buf.byteOffset + this.used) as ArrayBuffer;
    this.used = 0;
    this.count = 0;
    return out;
  }

  private grow(most: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.size, 2 * this.buf.length, this.used + most));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }
}

function writeString(b: Buffer, o: number, lengthBytes: 2 | 4, s: string): number {
  const n = b.write(s, o + lengthBytes, 'utf8');
  if (lengthBytes === 2) {
    if (n > 0xffff) throw new RangeError('archive batch: a JID longer than 65535 bytes');
    b.writeUInt16BE(n, o);
  } else b.writeUInt32BE(n, o);
  return o + lengthBytes + n;
}

/** The messages of a packed batch, in order. */
export function* readBatch(data: ArrayBuffer): Generator<{ seq: number; nonce: number; entry: NewArchiveEntry }> {
  const b = Buffer.from(data);
  let o = 0;
  while (o < b.length) {
    const seq = b.readUIntBE(o, 6);
    const nonce = b.readUIntBE(o + 6, 6);
    const ts = b.readDoubleBE(o + 12);
    const direction = b[o + 20] === 1 ? 'out' : 'in';
    o += 21;
    const strings: string[] = [];
    for (const lengthBytes of [2, 2, 2, 4]) {
      const n = lengthBytes === 2 ? b.readUInt16BE(o) : b.readUInt32BE(o);
      strings.push(b.toString('utf8', o + lengthBytes, o + lengthBytes + n));
      o += lengthBytes + n;
    }
    const [owner, withBare, withResource, xml] = strings as [string, string, string, string];
    yield { seq, nonce, entry: { owner, withBare, withResource, direction, ts, xml } };
  }
}
