/**
 * A small XML element tree for stanzas. Elements have no parent pointer, so trees can be
 * shared, compared with `toEqual` and serialised without cycles.
 *
 * Namespaces: the stream parser resolves prefixes and stores each element under its local
 * name with an `xmlns` attribute wherever its namespace differs from its parent's. A child
 * without `xmlns` is in its parent's namespace; `getChild(name, ns)` honours that.
 */
import { escapeAttr } from './escape';
import { elementToString } from './write-bytes';

export { escapeAttr, escapeText } from './escape';

export type Attrs = Record<string, string>;
export type Node = Element | string;

export class Element {
  readonly name: string;
  attrs: Attrs;
  children: Node[];

  constructor(name: string, attrs: Attrs = {}, children: Node[] = []) {
    this.name = name;
    this.attrs = attrs;
    this.children = children;
  }

  /** The element's own namespace, as declared on it (undefined when inherited). */
  getNS(): string | undefined {
    return this.attrs.xmlns;
  }

  is(name: string, xmlns?: string): boolean {
    return this.name === name && (xmlns === undefined || this.attrs.xmlns === xmlns);
  }

  get elements(): Element[] {
    const out: Element[] = [];
    for (const c of this.children) if (typeof c !== 'string') out.push(c);
    return out;
  }

  getChild(name: string, xmlns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || (c.attrs.xmlns ?? this.attrs.xmlns) === xmlns)) return c;
    }
    return undefined;
  }

  getChildren(name: string, xmlns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || (c.attrs.xmlns ?? this.attrs.xmlns) === xmlns)) out.push(c);
    }
    return out;
  }

  /** First child element in namespace `xmlns`, whatever its name. */
  getChildByNS(xmlns: string): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string' && c.attrs.xmlns === xmlns) return c;
    return undefined;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  /** Concatenated text of direct text children. */
  text(): string {
    let s = '';
    for (const c of this.children) if (typeof c === 'string') s += c;
    return s;
  }

  append(...children: (Node | undefined | null | false)[]): this {
    for (const c of children) if (c !== undefined && c !== null && c !== false) this.children.push(c);
    return this;
  }

  /** Deep copy, so a stanza can be re-addressed without touching the original. */
  clone(): Element {
    return new Element(
      this.name,
      { ...this.attrs },
      this.children.map((c) => (typeof c === 'string' ? c : c.clone())),
    );
  }

  /** Shallow copy with some attributes changed: children are shared, not copied. */
  withAttrs(changes: Record<string, string | undefined>): Element {
    const attrs: Attrs = { ...this.attrs };
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete attrs[k];
      else attrs[k] = v;
    }
    return new Element(this.name, attrs, this.children);
  }

  /** The element as XML (see write-bytes.ts: written as bytes, read back as one string). */
  toString(): string {
    return elementToString(this);
  }

  /** The start tag alone, unclosed: used for the stream header. */
  openTag(): string {
    let s = '<' + this.name;
    for (const k in this.attrs) {
      const v = this.attrs[k];
      if (v !== undefined) s += ' ' + k + '="' + escapeAttr(v) + '"';
    }
    return s + '>';
  }
}

type Child = Node | undefined | null | false | readonly (Node | undefined | null | false)[];

/** Builds an element: `x('iq', { type: 'result' }, x('query', { xmlns }))`. Undefined attrs are dropped. */
export function x(name: string, attrs?: Record<string, string | number | undefined> | null, ...children: Child[]): Element {
  const a: Attrs = {};
  if (attrs) for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) a[k] = String(v);
  }
  const el = new Element(name, a);
  for (const c of children) {
    if (Array.isArray(c)) el.append(...(c as (Node | undefined | null | false)[]));
    else el.append(c as Node | undefined | null | false);
  }
  return el;
}
