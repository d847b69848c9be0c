/**
 * Streaming parser for XMPP streams: RFC 6120 §11 restricted XML, UTF-8 only.
 *
 * A hand-written, resumable tokenizer (see bench/parser.ts for why: none of saxes, sax or
 * ltx is both restricted-XML-correct and fast). Bytes are validated as UTF-8 with
 * `buffer.isUtf8` and decoded once per chunk; the tokenizer then works on the string with
 * `charCodeAt` loops, slicing each name, value and text run once. Every state survives a
 * chunk boundary without re-scanning what it has already seen, except a few short
 * look-aheads (`<!`, an entity reference, a `]]>` or CRLF candidate, the XML declaration),
 * which are carried over verbatim and are bounded in length.
 *
 * What comes out: the stream root through `onOpen` (name and attributes as written), each
 * top-level child as an `Element` through `onElement`, with namespaces resolved: the
 * element's local name, and `attrs.xmlns` set on the stanza itself and wherever a child's
 * namespace differs from its parent's. `xmlns:prefix` declarations are dropped unless an
 * attribute name in their scope uses the prefix; a prefix declared on the stream root and
 * used in an attribute name inside a stanza is copied onto the stanza.
 *
 * Rejected: DTDs, comments, processing instructions other than a leading XML declaration,
 * and entity references other than the five predefined ones (`restricted-xml`); anything
 * not well-formed, including invalid UTF-8 and references to characters XML 1.0 forbids
 * (`not-well-formed`); unbound prefixes (`bad-namespace-prefix`); an XML declaration naming
 * an encoding other than UTF-8 (`unsupported-encoding`); non-whitespace text between
 * stanzas (`bad-format`); limits exceeded (`policy-violation`).
 */
import { isUtf8 } from 'node:buffer';
import { Element, type Attrs } from './element';
import { StreamError, type StreamErrorCondition } from '../errors';

export interface StreamParserLimits {
  /** Largest top-level element, counted in bytes from its `<` to its final `>`. */
  maxStanzaBytes: number;
  /** Deepest element nesting inside a stanza; the stanza itself is depth 1. */
  maxDepth: number;
  /** Most attributes (namespace declarations included) on one element. */
  maxAttributes: number;
}

export const DEFAULT_PARSER_LIMITS: StreamParserLimits = { maxStanzaBytes: 262144, maxDepth: 32, maxAttributes: 64 };

export interface StreamParserHandler {
  /** The stream root opened: <stream:stream ...>. name is the qualified name as written (e.g. 'stream:stream'); attrs as written (including xmlns and xmlns:stream declarations). */
  onOpen(name: string, attrs: Record<string, string>): void;
  /** A complete top-level child of the root (a stanza or nonza). */
  onElement(el: Element): void;
  /** </stream:stream> */
  onClose(): void;
  /** Fatal: the parser stops; the session sends this stream error and closes. Called at most once. */
  onError(err: StreamError): void;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** One prefix binding; the bindings in scope form a linked list, innermost first. */
interface Binding {
  readonly prefix: string;
  readonly uri: string;
  readonly next: Binding | null;
  /** Some attribute name in scope uses the prefix, so the declaration must be kept. */
  used: boolean;
  /** Declared on an element inside a stanza (false: on the stream root, or predefined). */
  readonly inside: boolean;
  /** Length of the list from here: prefix look-ups walk it, so it is bounded. */
  readonly count: number;
}

const XML_BINDING: Binding = { prefix: 'xml', uri: XML_NS, next: null, used: true, inside: false, count: 1 };
/** Most prefix declarations in scope at once. */
const MAX_PREFIXES = 64;

const enum S {
  WS, // outside any built element: before the root, between stanzas, after the end
  LT, // just after '<'
  SNAME, // element name in a start tag
  TAG, // inside a start tag, between attributes
  ANAME, // attribute name
  AEQ, // after an attribute name, expecting '='
  AQ, // after '=', expecting a quote
  AVAL, // attribute value
  EMPTY, // after '/' in a start tag, expecting '>'
  ENAME, // element name in an end tag
  EWS, // after the end tag's name, expecting '>'
  BANG, // after '<!' (carried over)
  CDATA, // inside <![CDATA[
  PI, // inside the leading <?xml ...?> (carried over)
  TEXT, // character data inside a stanza
  ENT, // an entity reference split by a chunk boundary (carried over)
  ERR,
}

// ASCII character classes.
const NSTART = 1;
const NCHAR = 2;
const SPACE = 4;
const CC = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_:]/.test(ch)) CC[c] = NSTART | NCHAR;
  else if (/[0-9.\-]/.test(ch)) CC[c] = NCHAR;
  else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) CC[c] = SPACE;
}

// Classes of characters below 63 in text (TX) and attribute values (AV).
const T_LT = 1;
const T_AMP = 2;
const T_GT = 3;
const T_CR = 4;
const T_BAD = 5;
const T_WS = 6;
const TX = new Uint8Array(63);
const AV = new Uint8Array(63);
for (let c = 0; c < 32; c++) {
  if (c !== 9 && c !== 10 && c !== 13) TX[c] = AV[c] = T_BAD;
}
TX[60] = AV[60] = T_LT;
TX[38] = AV[38] = T_AMP;
TX[62] = T_GT;
TX[13] = AV[13] = T_CR;
AV[9] = AV[10] = T_WS;

function isNameStartHigh(c: number): boolean {
  if (c < 0x2000) return c >= 0xc0 && c !== 0xd7 && c !== 0xf7 && (c < 0x300 || c > 0x36f) && c !== 0x37e;
  if (c < 0x3001) return c === 0x200c || c === 0x200d || (c >= 0x2070 && c <= 0x218f) || (c >= 0x2c00 && c <= 0x2fef);
  if (c <= 0xdb7f) return true; // to U+D7FF, then high surrogates of U+10000..U+EFFFF
  if (c <= 0xdbff) return false;
  if (c <= 0xdfff) return true; // low surrogates (pairing is guaranteed by UTF-8 validation)
  if (c < 0xf900) return false;
  return c <= 0xfdcf || (c >= 0xfdf0 && c <= 0xfffd);
}

function isNameCharHigh(c: number): boolean {
  return isNameStartHigh(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040;
}

function isNameStart(c: number): boolean {
  return c < 128 ? (CC[c]! & NSTART) !== 0 : isNameStartHigh(c);
}

// Names (element and attribute) repeat endlessly; a small direct-mapped cache hands back one
// internalized copy per name instead of a fresh slice each time. Attribute names are property
// keys, and V8 stores properties with non-internalized keys on a slow path; internalized
// strings also compare by pointer against the literals handlers test them with.
const NAME_CACHE_SIZE = 1024;
const MAX_CACHED_NAME = 32;
const nameCache: string[] = new Array<string>(NAME_CACHE_SIZE).fill('');

/** An internalized string: property keys are. (Also detaches it from the chunk it was sliced from.) */
function internalize(s: string): string {
  const o: Record<string, number> = {};
  o[s] = 0;
  for (const k in o) return k;
  return s;
}

function name(s: string, a: number, b: number): string {
  const len = b - a;
  if (len > MAX_CACHED_NAME) return s.slice(a, b);
  let h = Math.imul(s.charCodeAt(a) + (len << 16), 0x9e3779b1);
  h = Math.imul(h ^ s.charCodeAt(b - 1), 0x85ebca77);
  h = Math.imul(h ^ s.charCodeAt(a + (len >> 1)), 0xc2b2ae3d);
  h = (h ^ (h >>> 15)) & (NAME_CACHE_SIZE - 1);
  const c = nameCache[h]!;
  if (c.length === len) {
    let k = 0;
    while (k < len && c.charCodeAt(k) === s.charCodeAt(a + k)) k++;
    if (k === len) return c;
  }
  const v = internalize(s.slice(a, b));
  nameCache[h] = v;
  return v;
}

function err(condition: StreamErrorCondition, text: string): StreamError {
  return new StreamError(condition, text);
}

function nwf(text: string): StreamError {
  return new StreamError('not-well-formed', text);
}

function badChar(c: number): StreamError {
  return nwf('character U+' + c.toString(16).toUpperCase().padStart(4, '0') + ' is not allowed in XML');
}

function isXmlChar(c: number): boolean {
  return c >= 0x20 ? c <= 0xd7ff || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff) : c === 9 || c === 10 || c === 13;
}

/** The character decodeEntity() decoded. */
let entChar = '';
const MAX_ENTITY = 40;

/**
 * Decodes the entity reference starting at s[i] === '&'. Returns the index after its ';'
 * and sets entChar, or returns -1 when the reference runs past the end of the chunk.
 */
function decodeEntity(s: string, i: number, n: number): number {
  const lim = Math.min(n, i + MAX_ENTITY);
  let j = i + 1;
  for (; j < lim; j++) {
    const c = s.charCodeAt(j);
    if (c === 59) break;
    if (c < 128 ? (CC[c]! & NCHAR) === 0 && c !== 35 : !isNameCharHigh(c)) throw nwf('malformed entity reference');
  }
  if (j === lim) {
    if (lim === n && n - i < MAX_ENTITY) return -1;
    throw nwf('unterminated entity reference');
  }
  const len = j - i - 1;
  const c1 = s.charCodeAt(i + 1);
  if (c1 === 35) {
    // &#...;
    let k = i + 2;
    let v = 0;
    if (s.charCodeAt(k) === 120) {
      k++;
      if (k === j) throw nwf('empty character reference');
      for (; k < j; k++) {
        const c = s.charCodeAt(k);
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d < 0) throw nwf('malformed character reference');
        v = v * 16 + d;
        if (v > 0x10ffff) throw nwf('character reference out of range');
      }
    } else {
      if (k === j) throw nwf('empty character reference');
      for (; k < j; k++) {
        const c = s.charCodeAt(k);
        if (c < 48 || c > 57) throw nwf('malformed character reference');
        v = v * 10 + (c - 48);
        if (v > 0x10ffff) throw nwf('character reference out of range');
      }
    }
    if (!isXmlChar(v)) throw nwf('character reference to a character XML does not allow');
    entChar = String.fromCodePoint(v);
    return j + 1;
  }
  if (len === 2 && s.charCodeAt(i + 2) === 116) {
    if (c1 === 108) { entChar = '<'; return j + 1; } // &lt;
    if (c1 === 103) { entChar = '>'; return j + 1; } // &gt;
  } else if (len === 3 && c1 === 97 && s.charCodeAt(i + 2) === 109 && s.charCodeAt(i + 3) === 112) {
    entChar = '&'; // &amp;
    return j + 1;
  } else if (len === 4) {
    const name = s.slice(i + 1, j);
    if (name === 'quot') { entChar = '"'; return j + 1; }
    if (name === 'apos') { entChar = "'"; return j + 1; }
  }
  if (len > 0 && isNameStart(c1)) {
    let k = i + 2;
    while (k < j) {
      const c = s.charCodeAt(k);
      if (c < 128 ? (CC[c]! & NCHAR) === 0 : !isNameCharHigh(c)) break;
      k++;
    }
    if (k === j) throw err('restricted-xml', 'entity references other than the predefined ones are not allowed');
  }
  throw nwf('malformed entity reference');
}

const XML_DECL =
  /^xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*$/;
const MAX_DECL = 512;

/** Index up to which `buf[0, len)` holds complete UTF-8 sequences (an incomplete tail is carried). */
function completeUtf8(buf: Uint8Array, len: number): number {
  for (let k = 1; k <= 3 && k <= len; k++) {
    const b = buf[len - k]!;
    if (b < 0x80) return len;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return k < need ? len - k : len;
    }
  }
  return len;
}

function elementSize(el: Element): number {
  let n = el.name.length;
  for (const [k, v] of Object.entries(el.attrs)) n += k.length + (v?.length ?? 0);
  for (const c of el.children) n += typeof c === 'string' ? c.length : elementSize(c);
  return n;
}

/** An open element: null for the stream root, which is not built. */
type Frame = Element | null;

export class StreamParser {
  private readonly handler: StreamParserHandler;
  private readonly maxStanzaBytes: number;
  private readonly maxDepth: number;
  private readonly maxAttributes: number;
  private readonly pieceSize: number;
  /** Document mode (parseXml): the root itself is built and emitted. */
  private doc = false;
  /** Depth at which elements are emitted: 1 for a stream (children of the root), 0 for a document. */
  private base = 1;
  /** Bumped by reset() and end(), so a write() interrupted by a handler call can tell. */
  private gen = 0;
  private stopped = false;
  /** Inside write(): a nested write() or end() from a handler is queued. */
  private writing = false;
  private queued: (Buffer | string)[] | null = null;
  private endQueued = false;

  private state: S = S.WS;
  private atStart = true;
  private declOk = false;
  private rootDone = false;

  // The open elements, indexed by depth - 1.
  private depth = 0;
  private readonly qn: string[] = [];
  private readonly els: Frame[] = [];
  private readonly nss: string[] = [];
  private readonly defs: string[] = [];
  private readonly binds: Binding[] = [];

  // Token in progress.
  private acc = '';
  private colon = -1;
  private tagName = '';
  private tagColon = -1;
  private attrs: Attrs = {};
  private attrCount = 0;
  /** Names of the attributes so far in this start tag, for the duplicate check. */
  private readonly anames: string[] = [];
  private hasDef = false;
  private prefAttrs = false;
  private nsDecls: string[] | null = null;
  private aname = '';
  private acolon = -1;
  private quote = 0;
  private hadWs = false;
  private val = '';
  private text = '';
  private entRet: S = S.TEXT;
  /** Unprocessed tail of the previous chunk, prepended to the next. */
  private pend = '';
  private pendBytes = 0;
  /** Incomplete UTF-8 sequence at the end of the previous Buffer. */
  private carry: Buffer | null = null;

  // Byte accounting for maxStanzaBytes. Exact byte offsets are only worked out when a
  // top-level element outlives its chunk, or might be over the limit.
  /** Bytes fed so far. */
  private total = 0;
  /** Index in `cur` of the '<' opening the top-level markup in progress, or -1. */
  private startChar = -1;
  /** Stream byte offset of that '<' once its chunk is done, or -1. */
  private stanzaStart = -1;
  /** The chunk being parsed (with any carried-over text in front) and its byte offset. */
  private cur = '';
  private curBase = 0;
  /** Whether `cur` is pure ASCII, so that string indexes are byte offsets. */
  private ascii = true;

  constructor(handler: StreamParserHandler, limits?: Partial<StreamParserLimits>) {
    this.handler = handler;
    const l = { ...DEFAULT_PARSER_LIMITS, ...limits };
    this.maxStanzaBytes = l.maxStanzaBytes;
    this.maxDepth = l.maxDepth;
    this.maxAttributes = l.maxAttributes;
    this.pieceSize = Math.min(65536, Math.max(4096, l.maxStanzaBytes));
  }

  /** @internal Used by parseXml(): the root element itself is built and passed to onElement. */
  _documentMode(): this {
    this.doc = true;
    this.base = 0;
    return this;
  }

  /** Feeds bytes (or already decoded text). Never throws; errors go to onError. */
  write(chunk: Buffer | string): void {
    if (this.writing) {
      // Called from a handler: parsed once the current chunk is done.
      (this.queued ??= []).push(chunk);
      return;
    }
    this.writing = true;
    try {
      this.writeChunk(chunk);
      while (this.queued !== null) {
        const q = this.queued;
        this.queued = null;
        for (const c of q) this.writeChunk(c);
      }
    } finally {
      this.writing = false;
    }
    if (this.endQueued) {
      this.endQueued = false;
      this.end();
    }
  }

  private writeChunk(chunk: Buffer | string): void {
    if (this.stopped) return;
    const gen = this.gen;
    try {
      if (typeof chunk === 'string') this.writeString(chunk, gen);
      else this.writeBuffer(chunk, gen);
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * What the parser holds between writes, in UTF-16 code units: carried-over input, the token
   * in progress and the partly built stanza. For tests (the fuzz suite checks it stays within
   * maxStanzaBytes); walks the stanza, so not for hot paths.
   */
  retainedSize(): number {
    let n = this.pend.length + this.acc.length + this.val.length + this.text.length + this.aname.length + this.tagName.length;
    n += this.carry?.length ?? 0;
    for (const [k, v] of Object.entries(this.attrs)) n += k.length + v.length;
    const top = this.els[this.base];
    if (this.depth > this.base && top) n += elementSize(top);
    return n;
  }

  /**
   * Forgets all state: used after STARTTLS and SASL success, when the client opens a new
   * stream. Called from inside a handler callback, the rest of the chunk being parsed is
   * discarded (bytes a client sent before it could see <proceed/> must not reach the new
   * stream).
   */
  reset(): void {
    this.gen++;
    this.stopped = false;
    this.endQueued = false;
    this.state = S.WS;
    this.atStart = true;
    this.declOk = false;
    this.rootDone = false;
    this.depth = 0;
    this.qn.length = 0;
    this.els.length = 0;
    this.nss.length = 0;
    this.defs.length = 0;
    this.binds.length = 0;
    this.acc = '';
    this.tagName = '';
    this.aname = '';
    this.anames.length = 0;
    this.attrs = {};
    this.nsDecls = null;
    this.val = '';
    this.text = '';
    this.pend = '';
    this.pendBytes = 0;
    this.carry = null;
    this.total = 0;
    this.startChar = -1;
    this.stanzaStart = -1;
    this.cur = '';
  }

  /**
   * The peer closed the connection. Reports not-well-formed if it stopped inside markup or
   * inside a stanza; ending between stanzas without </stream:stream> is not an error here.
   */
  end(): void {
    if (this.writing) {
      this.endQueued = true;
      return;
    }
    if (this.stopped) return;
    try {
      if (this.carry !== null) throw nwf('truncated UTF-8 sequence at end of input');
      if (this.state !== S.WS || this.pend !== '' || this.depth > this.base) throw nwf('unexpected end of input');
      if (this.doc && !this.rootDone) throw nwf('no root element');
      this.stopped = true;
      this.gen++;
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    if (this.stopped) return;
    // Let go of the partial stanza and buffers at once: the connection may linger a while.
    this.reset();
    this.stopped = true;
    this.state = S.ERR;
    let se: StreamError;
    if (e instanceof StreamError) se = e;
    else {
      // A handler threw: write() must not, so report it as a stream error.
      se = new StreamError('internal-server-error');
      (se as Error & { cause?: unknown }).cause = e;
    }
    this.handler.onError(se);
  }

  private writeBuffer(chunk: Buffer, gen: number): void {
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    const len = buf.length;
    const end = completeUtf8(buf, len);
    if (end < len) this.carry = Buffer.from(buf.subarray(end));
    if (end === 0) return;
    if (!isUtf8(end === len ? buf : buf.subarray(0, end))) throw nwf('invalid UTF-8');
    const piece = this.pieceSize;
    let a = 0;
    while (a < end) {
      let b = end - a > piece ? a + piece : end;
      if (b < end) while ((buf[b]! & 0xc0) === 0x80) b--;
      this.feed(buf.toString('utf8', a, b), b - a);
      if (this.gen !== gen) return;
      a = b;
    }
  }

  private writeString(str: string, gen: number): void {
    if (this.carry !== null) throw nwf('truncated UTF-8 sequence');
    const len = str.length;
    const piece = this.pieceSize;
    let a = 0;
    while (a < len) {
      let b = len - a > piece ? a + piece : len;
      if (b < len && (str.charCodeAt(b - 1) & 0xfc00) === 0xd800) b--;
      const s = a === 0 && b === len ? str : str.slice(a, b);
      this.feed(s, Buffer.byteLength(s));
      if (this.gen !== gen) return;
      a = b;
    }
  }

  private feed(chunk: string, bytes: number): void {
    let s = chunk;
    let base = this.total;
    if (this.pend !== '') {
      s = this.pend + chunk;
      base -= this.pendBytes;
      this.pend = '';
    }
    this.total += bytes;
    this.cur = s;
    this.curBase = base;
    this.ascii = s.length === this.total - base;
    const gen = this.gen;
    this.run(s);
    if (this.gen !== gen) return;
    const sc = this.startChar;
    if (sc >= 0) {
      // Top-level markup continues into the next chunk: pin down where it started.
      this.startChar = -1;
      this.stanzaStart = this.total - (this.ascii ? s.length - sc : Buffer.byteLength(s.slice(sc)));
    }
    if (this.stanzaStart >= 0 && this.total - this.stanzaStart > this.maxStanzaBytes) {
      throw err('policy-violation', 'stanza too large');
    }
  }

  /** Whether the top-level element ending at index `end` of the current chunk is over maxStanzaBytes. */
  private tooLarge(end: number): boolean {
    const max = this.maxStanzaBytes;
    const sc = this.startChar;
    this.startChar = -1;
    if (sc >= 0) {
      // Bytes >= UTF-16 code units >= bytes / 3.
      const span = end - sc;
      if (span > max) return true;
      return !this.ascii && span * 3 > max && Buffer.byteLength(this.cur.slice(sc, end)) > max;
    }
    const start = this.stanzaStart;
    this.stanzaStart = -1;
    if (start < 0) return false;
    const base = this.curBase - start;
    if (base + end > max) return true;
    return !this.ascii && base + end * 3 > max && base + Buffer.byteLength(this.cur.slice(0, end)) > max;
  }

  private run(s: string): void {
    const n = s.length;
    const gen = this.gen;
    let i = 0;
    let start = 0;
    let st = this.state;

    loop: while (i < n) {
      switch (st) {
        case S.TEXT: {
          for (;;) {
            if (i >= n) {
              // Hold back a trailing ']' or ']]': it may start a ']]>'.
              if (i > start && s.charCodeAt(i - 1) === 93) {
                i--;
                if (i > start && s.charCodeAt(i - 1) === 93) i--;
              }
              break loop;
            }
            const c = s.charCodeAt(i);
            if (c > 62) {
              if (c >= 0xfffe) throw badChar(c);
              i++;
              continue;
            }
            const t = TX[c]!;
            if (t === 0) {
              i++;
              continue;
            }
            if (t === T_LT) {
              if (i > start) this.text += s.slice(start, i);
              st = S.LT;
              i++;
              continue loop;
            }
            if (t === T_AMP) {
              if (i > start) this.text += s.slice(start, i);
              const e = decodeEntity(s, i, n);
              if (e < 0) {
                this.entRet = S.TEXT;
                st = S.ENT;
                start = i;
                break loop;
              }
              this.text += entChar;
              i = start = e;
              continue;
            }
            if (t === T_GT) {
              if (i - 2 >= start && s.charCodeAt(i - 1) === 93 && s.charCodeAt(i - 2) === 93) throw nwf("']]>' is not allowed in text");
              i++;
              continue;
            }
            if (t === T_CR) {
              if (i + 1 >= n) break loop;
              this.text += s.slice(start, i) + '\n';
              i += s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            throw badChar(c);
          }
        }

        case S.WS: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c === 60) {
              if (this.rootDone) throw nwf('content after the root element');
              this.declOk = this.atStart;
              this.atStart = false;
              if (this.maxStanzaBytes !== Infinity) this.startChar = i;
              st = S.LT;
              i++;
              continue loop;
            }
            if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.atStart = false;
              i++;
              continue;
            }
            if (c === 0xfeff && this.atStart) {
              i++; // byte order mark
              continue;
            }
            throw this.textOutside();
          }
        }

        case S.LT: {
          const c = s.charCodeAt(i);
          if (c === 47) {
            // '</'
            const d = this.depth;
            if (d === 0) throw nwf('end tag without a start tag');
            const q = this.qn[d - 1]!;
            const e = i + 1 + q.length;
            if (e < n && s.charCodeAt(e) === 62 && s.startsWith(q, i + 1)) {
              i = e + 1;
              this.endTag(i);
              if (this.gen !== gen) return;
              st = this.depth > this.base ? S.TEXT : S.WS;
              start = i;
              continue loop;
            }
            this.acc = '';
            st = S.ENAME;
            start = ++i;
            continue loop;
          }
          if (c < 128 ? (CC[c]! & NSTART) !== 0 : isNameStartHigh(c)) {
            this.acc = '';
            this.colon = c === 58 ? 0 : -1;
            st = S.SNAME;
            start = i++;
            continue loop;
          }
          if (c === 33) {
            st = S.BANG;
            start = ++i;
            continue loop;
          }
          if (c === 63) {
            if (!this.declOk || this.depth !== 0) throw err('restricted-xml', 'processing instructions are not allowed');
            this.declOk = false;
            st = S.PI;
            start = ++i;
            continue loop;
          }
          throw nwf('invalid character after <');
        }

        case S.SNAME: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c < 128) {
              const t = CC[c]!;
              if ((t & NCHAR) !== 0) {
                if (c === 58) this.colon = this.colon === -1 ? this.acc.length + i - start : -2;
                i++;
                continue;
              }
              this.tagName = this.acc === '' ? name(s, start, i) : this.acc + s.slice(start, i);
              this.acc = '';
              this.tagColon = this.colon;
              this.attrs = {};
              this.attrCount = 0;
              this.hasDef = false;
              this.prefAttrs = false;
              this.nsDecls = null;
              if ((t & SPACE) !== 0) {
                this.hadWs = true;
                st = S.TAG;
                i++;
                continue loop;
              }
              if (c === 62) {
                i++;
                this.startTag(false, i);
                if (this.gen !== gen) return;
                st = this.depth > this.base ? S.TEXT : S.WS;
                start = i;
                continue loop;
              }
              if (c === 47) {
                st = S.EMPTY;
                i++;
                continue loop;
              }
              throw nwf('invalid character in element name');
            }
            if (!isNameCharHigh(c)) throw nwf('invalid character in element name');
            i++;
          }
        }

        case S.TAG: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c === 32 || c === 10 || c === 9 || c === 13) {
              this.hadWs = true;
              i++;
              continue;
            }
            if (c === 62) {
              i++;
              this.startTag(false, i);
              if (this.gen !== gen) return;
              st = this.depth > this.base ? S.TEXT : S.WS;
              start = i;
              continue loop;
            }
            if (c === 47) {
              st = S.EMPTY;
              i++;
              continue loop;
            }
            if (!this.hadWs) throw nwf('attributes must be separated by whitespace');
            if (!isNameStart(c)) throw nwf('invalid character in start tag');
            this.acc = '';
            this.colon = c === 58 ? 0 : -1;
            st = S.ANAME;
            start = i++;
            continue loop;
          }
        }

        case S.ANAME: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c < 128) {
              const t = CC[c]!;
              if ((t & NCHAR) !== 0) {
                if (c === 58) this.colon = this.colon === -1 ? this.acc.length + i - start : -2;
                i++;
                continue;
              }
              this.aname = this.acc === '' ? name(s, start, i) : this.acc + s.slice(start, i);
              this.acc = '';
              this.acolon = this.colon;
              if (c === 61) {
                st = S.AQ;
                i++;
                continue loop;
              }
              if ((t & SPACE) !== 0) {
                st = S.AEQ;
                i++;
                continue loop;
              }
              throw nwf('invalid character in attribute name');
            }
            if (!isNameCharHigh(c)) throw nwf('invalid character in attribute name');
            i++;
          }
        }

        case S.AEQ: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i++);
            if (c === 61) {
              st = S.AQ;
              continue loop;
            }
            if (c !== 32 && c !== 10 && c !== 9 && c !== 13) throw nwf("expected '=' after attribute name");
          }
        }

        case S.AQ: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i++);
            if (c === 34 || c === 39) {
              this.quote = c;
              this.val = '';
              st = S.AVAL;
              start = i;
              continue loop;
            }
            if (c !== 32 && c !== 10 && c !== 9 && c !== 13) throw nwf('attribute value must be quoted');
          }
        }

        case S.AVAL: {
          const q = this.quote;
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c > 62) {
              if (c >= 0xfffe) throw badChar(c);
              i++;
              continue;
            }
            if (c === q) {
              const v = this.val === '' ? s.slice(start, i) : this.val + s.slice(start, i);
              this.val = '';
              this.addAttr(this.aname, this.acolon, v);
              this.hadWs = false;
              st = S.TAG;
              i++;
              continue loop;
            }
            const t = AV[c]!;
            if (t === 0) {
              i++;
              continue;
            }
            if (t === T_AMP) {
              if (i > start) this.val += s.slice(start, i);
              const e = decodeEntity(s, i, n);
              if (e < 0) {
                this.entRet = S.AVAL;
                st = S.ENT;
                start = i;
                break loop;
              }
              this.val += entChar;
              i = start = e;
              continue;
            }
            if (t === T_WS) {
              // Attribute-value normalisation: literal tab and newline become spaces.
              this.val += s.slice(start, i) + ' ';
              start = ++i;
              continue;
            }
            if (t === T_CR) {
              if (i + 1 >= n) break loop;
              this.val += s.slice(start, i) + ' ';
              i += s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            if (t === T_LT) throw nwf("'<' is not allowed in attribute values");
            throw badChar(c);
          }
        }

        case S.EMPTY: {
          if (s.charCodeAt(i) !== 62) throw nwf("expected '>' after '/'");
          i++;
          this.startTag(true, i);
          if (this.gen !== gen) return;
          st = this.depth > this.base ? S.TEXT : S.WS;
          start = i;
          continue loop;
        }

        case S.ENAME: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c > 32 && c !== 62) {
              i++;
              continue;
            }
            const name = this.acc === '' ? s.slice(start, i) : this.acc + s.slice(start, i);
            this.acc = '';
            if (name !== this.qn[this.depth - 1]) throw nwf('mismatched end tag');
            if (c === 62) {
              i++;
              this.endTag(i);
              if (this.gen !== gen) return;
              st = this.depth > this.base ? S.TEXT : S.WS;
              start = i;
              continue loop;
            }
            if (c !== 32 && c !== 10 && c !== 9 && c !== 13) throw nwf('invalid character in end tag');
            st = S.EWS;
            i++;
            continue loop;
          }
        }

        case S.EWS: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i++);
            if (c === 62) {
              this.endTag(i);
              if (this.gen !== gen) return;
              st = this.depth > this.base ? S.TEXT : S.WS;
              start = i;
              continue loop;
            }
            if (c !== 32 && c !== 10 && c !== 9 && c !== 13) throw nwf("expected '>' in end tag");
          }
        }

        case S.BANG: {
          const c = s.charCodeAt(i);
          if (c === 45) throw err('restricted-xml', 'comments are not allowed');
          if (c >= 65 && c <= 90) throw err('restricted-xml', 'DTDs and markup declarations are not allowed');
          if (c === 91) {
            if (n - i < 7) {
              if ('[CDATA['.startsWith(s.slice(i))) break loop;
              throw nwf('malformed markup');
            }
            if (!s.startsWith('[CDATA[', i)) throw nwf('malformed markup');
            if (this.depth <= this.base) throw this.textOutside();
            i += 7;
            st = S.CDATA;
            start = i;
            continue loop;
          }
          throw nwf('malformed markup');
        }

        case S.CDATA: {
          for (;;) {
            if (i >= n) break loop;
            const c = s.charCodeAt(i);
            if (c > 93) {
              if (c >= 0xfffe) throw badChar(c);
              i++;
              continue;
            }
            if (c === 93) {
              if (i + 1 < n && s.charCodeAt(i + 1) !== 93) {
                i++;
                continue;
              }
              if (i + 2 >= n) break loop;
              if (s.charCodeAt(i + 2) === 62) {
                if (i > start) this.text += s.slice(start, i);
                i += 3;
                st = S.TEXT;
                start = i;
                continue loop;
              }
              i++;
              continue;
            }
            if (c >= 32 || c === 10 || c === 9) {
              i++;
              continue;
            }
            if (c === 13) {
              if (i + 1 >= n) break loop;
              this.text += s.slice(start, i) + '\n';
              i += s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            throw badChar(c);
          }
        }

        case S.PI: {
          const j = s.indexOf('?>', i);
          if (j < 0) {
            if (n - i > MAX_DECL) throw nwf('XML declaration too long');
            break loop;
          }
          this.xmlDecl(s.slice(i, j));
          i = j + 2;
          this.startChar = this.stanzaStart = -1;
          st = S.WS;
          continue loop;
        }

        case S.ENT: {
          const e = decodeEntity(s, i, n);
          if (e < 0) break loop;
          if (this.entRet === S.AVAL) this.val += entChar;
          else this.text += entChar;
          st = this.entRet;
          i = start = e;
          continue loop;
        }

        default:
          return;
      }
    }

    // End of chunk: keep the run in progress, carry what must be looked at again.
    this.state = st;
    switch (st) {
      case S.TEXT:
      case S.CDATA:
        if (i > start) this.text += s.slice(start, i);
        break;
      case S.AVAL:
        if (i > start) this.val += s.slice(start, i);
        break;
      case S.SNAME:
      case S.ANAME:
        this.acc += s.slice(start, i);
        break;
      case S.ENAME:
        this.acc += s.slice(start, i);
        if (this.acc.length > this.qn[this.depth - 1]!.length) throw nwf('mismatched end tag');
        break;
      case S.BANG:
      case S.PI:
      case S.ENT:
        i = start;
        break;
    }
    if (i < n) {
      this.pend = s.slice(i);
      this.pendBytes = this.ascii ? n - i : Buffer.byteLength(this.pend);
    }
  }

  private textOutside(): StreamError {
    if (this.depth === 0 || this.rootDone) return nwf('text outside the root element');
    return err('bad-format', 'text between stanzas');
  }

  private xmlDecl(d: string): void {
    if (!d.startsWith('xml') || (d.length > 3 && (CC[d.charCodeAt(3)] ?? 0) !== SPACE)) {
      throw err('restricted-xml', 'processing instructions are not allowed');
    }
    const m = XML_DECL.exec(d);
    if (m === null) throw nwf('malformed XML declaration');
    const enc = m[3];
    if (enc !== undefined && !/^utf-?8$/i.test(enc)) throw err('unsupported-encoding', 'only UTF-8 is supported');
  }

  private addAttr(name: string, colon: number, value: string): void {
    const count = this.attrCount;
    if (count >= this.maxAttributes) throw err('policy-violation', 'too many attributes');
    const names = this.anames;
    if (count < 16) {
      for (let k = 0; k < count; k++) if (names[k] === name) throw nwf('duplicate attribute');
    } else if (Object.prototype.hasOwnProperty.call(this.attrs, name)) {
      throw nwf('duplicate attribute');
    }
    names[count] = name;
    this.attrCount = count + 1;
    const attrs = this.attrs;
    if (colon !== -1) {
      if (colon < 1 || colon === name.length - 1) throw nwf('malformed attribute name');
      if (colon === 5 && name.startsWith('xmlns')) (this.nsDecls ??= []).push(name.slice(6), value);
      else this.prefAttrs = true;
    } else if (name === 'xmlns') {
      this.hasDef = true;
    }
    if (name === '__proto__') Object.defineProperty(attrs, name, { value, enumerable: true, writable: true, configurable: true });
    else attrs[name] = value;
  }

  private startTag(selfClose: boolean, end: number): void {
    const d = this.depth;
    const base = this.base;
    if (d + 1 - base > this.maxDepth) throw err('policy-violation', 'elements nested too deeply');
    const name = this.tagName;
    const colon = this.tagColon;
    let attrs = this.attrs;

    let bind = d > 0 ? this.binds[d - 1]! : XML_BINDING;
    let def = d > 0 ? this.defs[d - 1]! : '';
    if (this.hasDef) {
      def = attrs.xmlns!;
      if (def === XML_NS || def === XMLNS_NS) throw nwf('reserved namespace name');
    }
    if (this.nsDecls !== null) bind = this.declare(this.nsDecls, bind, d >= base);
    let ns: string;
    let local: string;
    if (colon === -1) {
      ns = def;
      local = name;
    } else {
      if (colon < 1 || colon === name.length - 1) throw nwf('malformed element name');
      const p = name.slice(0, colon);
      local = name.slice(colon + 1);
      if (p === 'xmlns') throw nwf('the xmlns prefix cannot be used for elements');
      let b: Binding | null = bind;
      while (b !== null && b.prefix !== p) b = b.next;
      if (b === null) throw err('bad-namespace-prefix', 'unbound prefix: ' + p);
      ns = b.uri;
    }
    if (this.prefAttrs) this.attrPrefixes(attrs, bind, d);

    this.qn[d] = name;
    this.nss[d] = ns;
    this.defs[d] = def;
    this.binds[d] = bind;
    this.depth = d + 1;

    if (d < base) {
      // The stream root.
      this.els[d] = null;
      this.startChar = this.stanzaStart = -1;
      const gen = this.gen;
      this.handler.onOpen(name, attrs);
      if (selfClose && this.gen === gen) this.endTag(end);
      return;
    }

    if (d === base) {
      if (ns !== '' || this.hasDef) attrs.xmlns = ns;
    } else if (ns !== this.nss[d - 1]) {
      attrs.xmlns = ns;
    } else if (this.hasDef) {
      attrs = without(attrs, 'xmlns'); // redundant: same namespace as the parent
    }
    const el = new Element(local, attrs, []);
    if (d > base) {
      const parent = this.els[d - 1]!;
      if (this.text !== '') {
        parent.children.push(this.text);
        this.text = '';
      }
      parent.children.push(el);
    }
    this.els[d] = el;
    if (selfClose) this.endTag(end);
  }

  private declare(decls: string[], head: Binding, inside: boolean): Binding {
    let bind = head;
    for (let k = 0; k < decls.length; k += 2) {
      const p = decls[k]!;
      const uri = decls[k + 1]!;
      if (p === 'xmlns') throw nwf('the xmlns prefix cannot be declared');
      if (p === 'xml') {
        if (uri !== XML_NS) throw nwf('the xml prefix cannot be rebound');
        continue;
      }
      if (uri === XML_NS || uri === XMLNS_NS) throw nwf('reserved namespace name');
      if (uri === '') throw nwf('a prefix cannot be undeclared');
      if (bind.count >= MAX_PREFIXES) throw err('policy-violation', 'too many namespace prefixes');
      bind = { prefix: p, uri, next: bind, used: false, inside, count: bind.count + 1 };
    }
    return bind;
  }

  /** Checks prefixed attribute names: bound, not duplicated once expanded; marks their bindings used. */
  private attrPrefixes(attrs: Attrs, bind: Binding, d: number): void {
    let seen: string[] | null = null;
    for (const k in attrs) {
      const c = k.indexOf(':');
      if (c < 0) continue;
      const p = k.slice(0, c);
      if (p === 'xmlns') continue;
      if (k.indexOf(':', c + 1) >= 0) throw nwf('malformed attribute name');
      let b: Binding | null = bind;
      while (b !== null && b.prefix !== p) b = b.next;
      if (b === null) throw err('bad-namespace-prefix', 'unbound prefix: ' + p);
      const expanded = b.uri + ' ' + k.slice(c + 1);
      if (seen === null) seen = [expanded];
      else if (seen.includes(expanded)) throw nwf('duplicate attribute');
      else seen.push(expanded);
      if (b === XML_BINDING) continue;
      if (b.inside) b.used = true;
      else if (d >= this.base) {
        // Declared on the stream root: the stanza must carry it to stand alone.
        const top = d === this.base ? attrs : this.els[this.base]!.attrs;
        const key = 'xmlns:' + p;
        if (top[key] === undefined) top[key] = b.uri;
      }
    }
  }

  private endTag(end: number): void {
    const d = this.depth - 1;
    this.depth = d;
    const el = this.els[d];
    if (el === null || el === undefined) {
      // </stream:stream>
      this.rootDone = true;
      this.startChar = this.stanzaStart = -1;
      this.handler.onClose();
      return;
    }
    if (this.text !== '') {
      el.children.push(this.text);
      this.text = '';
    }
    const bind = this.binds[d]!;
    const outer = d > 0 ? this.binds[d - 1]! : XML_BINDING;
    if (bind !== outer) {
      for (let b: Binding | null = bind; b !== null && b !== outer; b = b.next) {
        if (!b.used) el.attrs = without(el.attrs, 'xmlns:' + b.prefix);
      }
    }
    this.els[d] = null;
    if (d === this.base) {
      if (this.tooLarge(end)) throw err('policy-violation', 'stanza too large');
      if (this.doc) this.rootDone = true;
      this.handler.onElement(el);
    }
  }
}

/** A copy of attrs without one key (a fresh object keeps V8's fast properties, unlike delete). */
function without(attrs: Attrs, key: string): Attrs {
  const out: Attrs = {};
  for (const k in attrs) {
    if (k === key) continue;
    if (k === '__proto__') Object.defineProperty(out, k, { value: attrs[k], enumerable: true, writable: true, configurable: true });
    else out[k] = attrs[k]!;
  }
  return out;
}
