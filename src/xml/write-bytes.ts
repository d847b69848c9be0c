// Serialising an element straight into a Buffer, as UTF-8: the same bytes as
// Buffer.from(el.toString()), without the string. toString() builds its result from a few
// dozen concatenations (about 1.2 KB of short-lived strings for a 150-byte chat message),
// which is garbage for the collector when the text is only wanted as bytes, as in the
// archive's packed batches. ASCII is copied by a loop; other text goes through Buffer.write.
import { escapeAttr, escapeText, type Element } from './element';

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const SPACE = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;

/** Most bytes writeElement can need for el: 6 per UTF-16 unit of text (an escape), plus markup. */
export function elementBytesBound(el: Element): number {
  let n = 2 * el.name.length + 5;
  for (const k in el.attrs) {
    const v = el.attrs[k];
    if (v !== undefined) n += k.length + 6 * v.length + 4;
  }
  for (const c of el.children) n += typeof c === 'string' ? 6 * c.length : elementBytesBound(c);
  return n;
}

/**
 * Writes el at b[o...] (which must have elementBytesBound(el) bytes of room) and returns
 * where it ends.
 */
export function writeElement(b: Buffer, o: number, el: Element): number {
  b[o++] = LT;
  o = writeRaw(b, o, el.name);
  for (const k in el.attrs) {
    const v = el.attrs[k];
    if (v === undefined) continue;
    b[o++] = SPACE;
    o = writeRaw(b, o, k);
    b[o++] = EQ;
    b[o++] = QUOTE;
    o = writeEscaped(b, o, v, true);
    b[o++] = QUOTE;
  }
  if (el.children.length === 0) {
    b[o++] = SLASH;
    b[o++] = GT;
    return o;
  }
  b[o++] = GT;
  for (const c of el.children) o = typeof c === 'string' ? writeEscaped(b, o, c, false) : writeElement(b, o, c);
  b[o++] = LT;
  b[o++] = SLASH;
  o = writeRaw(b, o, el.name);
  b[o++] = GT;
  return o;
}

/** Names: written as they are, like toString() does. */
function writeRaw(b: Buffer, o: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return o + b.write(s.slice(i), o);
    b[o++] = c;
  }
  return o;
}

/** Text and attribute values, escaped as escapeText/escapeAttr do. */
function writeEscaped(b: Buffer, o: number, s: string, attr: boolean): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      const rest = s.slice(i);
      return o + b.write(attr ? escapeAttr(rest) : escapeText(rest), o);
    }
    switch (c) {
      case 0x26: o = put(b, o, '&amp;'); break;
      case LT: o = put(b, o, '&lt;'); break;
      case GT: o = put(b, o, '&gt;'); break;
      case 0x0d: o = put(b, o, '&#13;'); break;
      case QUOTE: o = attr ? put(b, o, '&quot;') : ((b[o] = c), o + 1); break;
      case 0x27: o = attr ? put(b, o, '&apos;') : ((b[o] = c), o + 1); break;
      case 0x09: o = attr ? put(b, o, '&#9;') : ((b[o] = c), o + 1); break;
      case 0x0a: o = attr ? put(b, o, '&#10;') : ((b[o] = c), o + 1); break;
      default: b[o++] = c;
    }
  }
  return o;
}

function put(b: Buffer, o: number, ascii: string): number {
  for (let i = 0; i < ascii.length; i++) b[o++] = ascii.charCodeAt(i);
  return o;
}
