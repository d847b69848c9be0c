// Escaping for XML text and attribute values.

// Besides the markup characters, CR in text and TAB/LF/CR in attributes are written as
// character references: a parser normalises them otherwise, and the value would not survive.
const TEXT_RE = /[&<>\r]/;
const ATTR_RE = /[&<>"'\t\n\r]/;

export function escapeText(s: string): string {
  if (!TEXT_RE.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

export function escapeAttr(s: string): string {
  if (!ATTR_RE.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
    .replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}
