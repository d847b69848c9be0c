// Serialising an element as UTF-8 bytes, straight into a Buffer: the archive's packed batches
// take these bytes, and Element.toString() reads them back as one string. Building the text
// by concatenation made a few dozen short strings per element (about 1.2 KB of garbage for a
// 150-byte chat message). ASCII is copied by a loop; other text goes through Buffer.write.
import { escapeAttr, escapeText } from './escape';
import type { Element } from './element';

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const SPACE = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;

/** Kept between calls: most stanzas fit. Bigger ones get a buffer of their own. */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);
const SCRATCH_MAX = 1024 * 1024;

/**
 * el as an XML string: written as bytes, then read back as one flat string. Element.toString
 * is this. Built by concatenation, each serialisation left a few dozen short strings behind;
 * over 200 000 chat messages with archiving on (whose stanza-id makes every delivered message
 * one element longer), the routing thread's young-generation collections then took 504-537 ms
 * and promoted 170 MB, against 174-241 ms and 37 MB this way.
 */
export function elementToString(el: Element): string {
  const most = elementBytesBound(el);
  if (tap.el === el) {
    const xml = writeTapped(el, most);
    if (xml !== undefined) return xml;
  }
  let b = scratch;
  if (most > b.length) {
    b = Buffer.allocUnsafeSlow(most);
    if (most <= SCRATCH_MAX) scratch = b;
  }
  return b.toString('utf8', 0, writeElement(b, 0, el));
}

/**
 * One element whose next serialisation by elementToString is written into a listener's buffer
 * and left there, without the children added to it since: the archive takes a message's bytes
 * as they are written for its delivery, instead of serialising it a second time (a microsecond
 * a chat message, a tenth of the routing thread's work), and leaves out the stanza-id the
 * delivered copy carries. Writing into the listener's buffer, not a scratch buffer copied from,
 * saves the copy. The element's children must be the array `children` was, holding at least
 * `count` children; otherwise the listener is not called.
 */
export interface SerializationSink {
  /** A buffer with `most` bytes of room from `at`, where the element is written. */
  open(most: number): Buffer;
  readonly at: number;
  /**
   * The element was written at [at, end) of the buffer open() gave; from `cut` on are its
   * children past `count` and its end tag (cut === end: none). The bytes from `cut` are
   * the listener's to overwrite.
   */
  close(cut: number, end: number): void;
}

interface SerializationTap {
  el: Element | undefined;
  children: Element['children'];
  count: number;
  sink: SerializationSink | undefined;
}

const NO_CHILDREN: Element['children'] = [];
const tap: SerializationTap = { el: undefined, children: NO_CHILDREN, count: 0, sink: undefined };

/** Sets the tap (one at a time: a new one replaces the last). */
export function setSerializationTap(el: Element, count: number, sink: SerializationSink): void {
  tap.el = el;
  tap.children = el.children;
  tap.count = count;
  tap.sink = sink;
}

/** Takes the tap off el, if it is on it. */
export function clearSerializationTap(el: Element): void {
  if (tap.el === el) {
    tap.el = undefined;
    tap.children = NO_CHILDREN; // nothing of the last element stays reachable from here
    tap.sink = undefined;
  }
}

/** elementToString for the tapped element: written into the sink's buffer, read back from there. */
function writeTapped(el: Element, most: number): string | undefined {
  const { children, count, sink } = tap;
  clearSerializationTap(el);
  if (sink === undefined || el.children !== children || children.length < count) return undefined;
  const b = sink.open(most);
  const at = sink.at;
  let o = writeOpening(b, at, el);
  let cut: number;
  if (children.length === 0) {
    b[o++] = SLASH;
    b[o++] = GT;
    cut = o;
  } else {
    b[o++] = GT;
    cut = -1;
    for (let i = 0; i < children.length; i++) {
      if (i === count) cut = o;
      const c = children[i]!;
      o = typeof c === 'string' ? writeEscaped(b, o, c, false) : writeElement(b, o, c);
    }
    o = writeClosing(b, o, el);
    if (cut === -1) cut = o;
  }
  const xml = b.toString('utf8', at, o);
  sink.close(cut, o);
  return xml;
}

/**
 * Most bytes writeElement can need for el (with `children` and `count` as it is given them):
 * 6 per UTF-16 unit of text (an escape), 3 per unit of a name (UTF-8), plus markup.
 */
export function elementBytesBound(el: Element, children = el.children, count = children.length): number {
  let n = 6 * el.name.length + 5;
  // attrs read once: `for (k in o) o[k]` on one object takes V8's enum-cache fast path; with
  // el.attrs read again each time it is a megamorphic keyed load (attrs come in many shapes).
  const attrs = el.attrs;
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) n += 3 * k.length + 6 * v.length + 4;
  }
  for (let i = 0; i < count; i++) {
    const c = children[i]!;
    n += typeof c === 'string' ? 6 * c.length : elementBytesBound(c);
  }
  return n;
}

/**
 * Writes el at b[o...] (which must have elementBytesBound(el) bytes of room) and returns
 * where it ends; with `children` and `count`, as if its children were the first `count` of those.
 */
export function writeElement(b: Buffer, o: number, el: Element, children = el.children, count = children.length): number {
  o = writeOpening(b, o, el);
  if (count === 0) {
    b[o++] = SLASH;
    b[o++] = GT;
    return o;
  }
  b[o++] = GT;
  for (let i = 0; i < count; i++) {
    const c = children[i]!;
    o = typeof c === 'string' ? writeEscaped(b, o, c, false) : writeElement(b, o, c);
  }
  return writeClosing(b, o, el);
}

/** '<' name and attributes, without the '>'. */
function writeOpening(b: Buffer, o: number, el: Element): number {
  b[o++] = LT;
  o = writeUtf8(b, o, el.name);
  const attrs = el.attrs; // see elementBytesBound
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    b[o++] = SPACE;
    o = writeUtf8(b, o, k);
    b[o++] = EQ;
    b[o++] = QUOTE;
    o = writeEscaped(b, o, v, true);
    b[o++] = QUOTE;
  }
  return o;
}

/** The end tag of el. */
export function writeClosing(b: Buffer, o: number, el: Element): number {
  b[o++] = LT;
  b[o++] = SLASH;
  o = writeUtf8(b, o, el.name);
  b[o++] = GT;
  return o;
}

/**
 * s as UTF-8 at b[o...] (room for 3 bytes per UTF-16 unit), unescaped, as names are; returns
 * the end. ASCII by a loop: for short strings that is several times cheaper than Buffer.write.
 */
export function writeUtf8(b: Buffer, o: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return o + b.write(s.slice(i), o);
    b[o++] = c;
  }
  return o;
}

/**
 * Which ASCII characters writeEscaped replaces: 1 in text and attribute values, 2 in attribute
 * values only. One table load per character instead of a chain of comparisons.
 */
const ESCAPED = new Uint8Array(128);
for (const c of [0x26, LT, GT, 0x0d]) ESCAPED[c] = 1;
for (const c of [QUOTE, 0x27, 0x09, 0x0a]) ESCAPED[c] = 2;

/**
 * From this length on, a string with nothing to escape and nothing outside ASCII is found so
 * by a RegExp and copied by Buffer.write: for 64 characters 94 against 143 ns (the loop's
 * cost is per character, the native call's mostly per call).
 */
const NATIVE_COPY_MIN = 40;
const TEXT_NOT_PLAIN = /[&<>\r\u0080-\uffff]/;
const ATTR_NOT_PLAIN = /[&<>\r"'\t\n\u0080-\uffff]/;

/** Text and attribute values, escaped as escapeText/escapeAttr do. */
function writeEscaped(b: Buffer, o: number, s: string, attr: boolean): number {
  const n = s.length;
  if (n >= NATIVE_COPY_MIN && !(attr ? ATTR_NOT_PLAIN : TEXT_NOT_PLAIN).test(s)) return o + b.write(s, o, 'latin1');
  const limit = attr ? 2 : 1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      const rest = s.slice(i);
      return o + b.write(attr ? escapeAttr(rest) : escapeText(rest), o);
    }
    const e = ESCAPED[c]!;
    if (e === 0 || e > limit) {
      b[o++] = c;
      continue;
    }
    switch (c) {
      case 0x26: o = put(b, o, '&amp;'); break;
      case LT: o = put(b, o, '&lt;'); break;
      case GT: o = put(b, o, '&gt;'); break;
      case 0x0d: o = put(b, o, '&#13;'); break;
      case QUOTE: o = put(b, o, '&quot;'); break;
      case 0x27: o = put(b, o, '&apos;'); break;
      case 0x09: o = put(b, o, '&#9;'); break;
      default: o = put(b, o, '&#10;');
    }
  }
  return o;
}

function put(b: Buffer, o: number, ascii: string): number {
  for (let i = 0; i < ascii.length; i++) b[o++] = ascii.charCodeAt(i);
  return o;
}
