/**
 * A fast incremental reader for the load generator: it only finds the boundaries of top-level
 * stanzas in an XMPP stream (and the stream header and footer), without building elements or
 * decoding text. Attributes of a stanza's opening tag are read on demand with attr().
 *
 * It works on bytes: '<', '>', '/', quotes and the other markup bytes are ASCII, and every
 * byte of a multi-byte UTF-8 sequence is >= 0x80, so no decoding is needed to find them.
 * A stream restart (a new <stream:stream> after SASL success) is recognised by name, so the
 * same reader serves the whole connection.
 *
 * It is not a validating parser: it trusts the server to send well-formed XML. It handles
 * attribute values containing '>' or '/', CDATA sections, comments, processing instructions
 * and the XML declaration, and any split of the input into chunks.
 *
 * The Buffer handed to onStanza is only valid during the call (it may be a view into the
 * chunk or into the reader's own buffer): copy what you keep.
 */

export interface ReaderHandler {
  /** The stream header's opening tag (bytes [start, end) of buf). */
  streamStart?(buf: Buffer, start: number, end: number): void;
  /** A complete top-level element: bytes [start, end) of buf. */
  stanza(buf: Buffer, start: number, end: number): void;
  /** </stream:stream>. */
  streamEnd?(): void;
}

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f;
const QM = 0x3f; // ?
const BANG = 0x21; // !
const DQ = 0x22;
const SQ = 0x27;
const EMPTY = Buffer.alloc(0);
const CDATA_OPEN = Buffer.from('<![CDATA[');
const CDATA_CLOSE = Buffer.from(']]>');
const COMMENT_OPEN = Buffer.from('<!--');
const COMMENT_CLOSE = Buffer.from('-->');
const PI_CLOSE = Buffer.from('?>');

/** True when the tag name starting at buf[i] (just after '<' or '</') is `stream` or `<prefix>:stream`. */
function isStreamName(buf: Buffer, i: number, end: number): boolean {
  let j = i;
  while (j < end) {
    const c = buf[j]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === GT || c === SLASH) break;
    j++;
  }
  // name is buf[i, j): ends with "stream" and is either exactly that or preceded by ':'
  if (j - i < 6) return false;
  if (buf[j - 6] !== 0x73 || buf[j - 5] !== 0x74 || buf[j - 4] !== 0x72 || buf[j - 3] !== 0x65 || buf[j - 2] !== 0x61 || buf[j - 1] !== 0x6d) {
    return false;
  }
  return j - i === 6 || buf[j - 7] === 0x3a;
}

/** Index of the '>' that ends the start tag beginning at `from` (skipping quoted values), or -1. */
function tagEnd(buf: Buffer, from: number): number {
  const len = buf.length;
  let q = 0;
  for (let k = from; k < len; k++) {
    const c = buf[k]!;
    if (q !== 0) {
      if (c === q) q = 0;
    } else if (c === GT) {
      return k;
    } else if (c === DQ || c === SQ) {
      q = c;
    }
  }
  return -1;
}

function startsWith(buf: Buffer, at: number, prefix: Buffer): boolean | undefined {
  const n = prefix.length;
  for (let k = 0; k < n; k++) {
    if (at + k >= buf.length) return undefined; // not enough bytes yet
    if (buf[at + k] !== prefix[k]) return false;
  }
  return true;
}

export class StanzaReader {
  private buf: Buffer = EMPTY;
  /** Where scanning resumes (always at a token boundary). */
  private pos = 0;
  /** 0: before the stream header; 1: inside the stream, between stanzas; >= 2: inside a stanza. */
  private depth = 0;
  /** Start of the stanza being read (when depth >= 2). */
  private start = 0;

  constructor(private readonly handler: ReaderHandler) {}

  /** Bytes held back waiting for the rest of a token or stanza. */
  get pending(): number {
    return this.buf.length - (this.depth >= 2 ? Math.min(this.start, this.pos) : this.pos);
  }

  push(chunk: Buffer): void {
    if (this.buf.length === 0) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf, chunk]);
    }
    this.scan();
  }

  private scan(): void {
    const buf = this.buf;
    const len = buf.length;
    let pos = this.pos;
    for (;;) {
      const i = buf.indexOf(LT, pos);
      if (i < 0) {
        pos = len;
        break;
      }
      if (i + 1 >= len) {
        pos = i;
        break;
      }
      const c = buf[i + 1]!;
      if (c === SLASH) {
        const j = buf.indexOf(GT, i + 2);
        if (j < 0) {
          pos = i;
          break;
        }
        pos = j + 1;
        if (this.depth <= 1) {
          // </stream:stream> (or a stray end tag between stanzas, treated the same)
          this.depth = 0;
          this.handler.streamEnd?.();
        } else if (--this.depth === 1) {
          this.handler.stanza(buf, this.start, pos);
        }
      } else if (c === QM) {
        const j = buf.indexOf(PI_CLOSE, i + 2);
        if (j < 0) {
          pos = i;
          break;
        }
        pos = j + 2;
      } else if (c === BANG) {
        const cd = startsWith(buf, i, CDATA_OPEN);
        const cm = cd ? false : startsWith(buf, i, COMMENT_OPEN);
        if (cd === undefined || cm === undefined) {
          pos = i;
          break;
        }
        const close = cd ? CDATA_CLOSE : cm ? COMMENT_CLOSE : null;
        const j = close ? buf.indexOf(close, i + 4) : buf.indexOf(GT, i + 2);
        if (j < 0) {
          pos = i;
          break;
        }
        pos = j + (close ? close.length : 1);
      } else {
        const j = tagEnd(buf, i + 1);
        if (j < 0) {
          pos = i;
          break;
        }
        pos = j + 1;
        const selfClosing = buf[j - 1] === SLASH;
        if (this.depth <= 1 && !selfClosing && isStreamName(buf, i + 1, j)) {
          this.depth = 1;
          this.handler.streamStart?.(buf, i, pos);
        } else if (this.depth <= 1) {
          if (this.depth === 0) this.depth = 1; // tolerate a missing header
          if (selfClosing) {
            this.handler.stanza(buf, i, pos);
          } else {
            this.start = i;
            this.depth = 2;
          }
        } else if (!selfClosing) {
          this.depth++;
        }
      }
    }
    // Keep only what is still needed: the open stanza, or the incomplete token.
    const keepFrom = this.depth >= 2 ? Math.min(this.start, pos) : pos;
    if (keepFrom >= len) {
      this.buf = EMPTY;
      this.pos = 0;
      this.start = 0;
    } else if (keepFrom > 0) {
      this.buf = buf.subarray(keepFrom);
      this.pos = pos - keepFrom;
      this.start = this.depth >= 2 ? this.start - keepFrom : 0;
    } else {
      this.pos = pos;
    }
    // Keeping a view into the caller's chunk is safe because Node's sockets hand out a fresh
    // Buffer per 'data' event; it avoids a copy.
  }
}

const ENTITY_RE = /&(?:#x([0-9a-fA-F]+)|#([0-9]+)|(amp|lt|gt|quot|apos));/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(ENTITY_RE, (_m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
    if (dec !== undefined) return String.fromCodePoint(parseInt(dec, 10));
    return NAMED[name!]!;
  });
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** The element name of the start tag at buf[start] (which is '<'). */
export function tagName(buf: Buffer, start: number, end = buf.length): string {
  let j = start + 1;
  while (j < end) {
    const c = buf[j]!;
    if (isSpace(c) || c === GT || c === SLASH) break;
    j++;
  }
  return buf.toString('latin1', start + 1, j);
}

/** True when the start tag at buf[start] names `name` (ASCII), without allocating. */
export function nameIs(buf: Buffer, start: number, name: string): boolean {
  const n = name.length;
  for (let k = 0; k < n; k++) if (buf[start + 1 + k] !== name.charCodeAt(k)) return false;
  const c = buf[start + 1 + n];
  return c === undefined || isSpace(c) || c === GT || c === SLASH;
}

/**
 * Finds attribute `name` in the start tag at buf[start] and returns [valueStart, valueEnd)
 * (raw, still escaped), or undefined.
 */
export function attrRange(buf: Buffer, start: number, name: string, end = buf.length): [number, number] | undefined {
  let k = start + 1;
  // skip the element name
  while (k < end && !isSpace(buf[k]!) && buf[k] !== GT && buf[k] !== SLASH) k++;
  const n = name.length;
  for (;;) {
    while (k < end && isSpace(buf[k]!)) k++;
    if (k >= end) return undefined;
    const c = buf[k]!;
    if (c === GT || c === SLASH) return undefined;
    const nameStart = k;
    while (k < end && buf[k] !== 0x3d /* = */ && !isSpace(buf[k]!) && buf[k] !== GT) k++;
    const nameEnd = k;
    while (k < end && isSpace(buf[k]!)) k++;
    if (buf[k] !== 0x3d) return undefined; // malformed
    k++;
    while (k < end && isSpace(buf[k]!)) k++;
    const q = buf[k];
    if (q !== DQ && q !== SQ) return undefined;
    const vStart = k + 1;
    const vEnd = buf.indexOf(q, vStart);
    if (vEnd < 0 || vEnd > end) return undefined;
    if (nameEnd - nameStart === n) {
      let same = true;
      for (let m = 0; m < n; m++) {
        if (buf[nameStart + m] !== name.charCodeAt(m)) {
          same = false;
          break;
        }
      }
      if (same) return [vStart, vEnd];
    }
    k = vEnd + 1;
  }
}

/** The (unescaped) value of attribute `name` of the start tag at buf[start], or undefined. */
export function attr(buf: Buffer, start: number, name: string, end = buf.length): string | undefined {
  const r = attrRange(buf, start, name, end);
  return r === undefined ? undefined : unescapeXml(buf.toString('utf8', r[0], r[1]));
}
