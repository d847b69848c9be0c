// XEP-0313 queries: the <query/> payload (XEP-0004 form, XEP-0059 result set, flip-page) read
// into plain values, with the stanza errors the XEPs give for each kind of bad input.
import { Jid, StanzaError, x, type Element } from '../../src';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_DATA = 'jabber:x:data';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
export const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';
/** XEP-0431: Full Text Search in MAM. */
export const NS_FULLTEXT = 'urn:xmpp:fulltext:0';
/** XEP-0431's field, in Clark notation as XEP-0068 wants for fields another spec defines. */
export const FULLTEXT_FIELD = '{urn:xmpp:fulltext:0}fulltext';
/** The same search under the name ejabberd and MongooseIM clients use. */
export const WITHTEXT_FIELD = 'withtext';

export interface ParsedQuery {
  readonly queryId?: string;
  readonly with?: Jid;
  /** Inclusive time bounds, ms since the epoch. */
  readonly start?: number;
  readonly end?: number;
  /** Archive ids from the form (#extended): exclusive bounds, and a list to fetch. */
  readonly afterId?: string;
  readonly beforeId?: string;
  readonly ids?: readonly string[];
  /** Full-text search string. */
  readonly text?: string;
  readonly rsm: ParsedRsm;
  /** #extended: send the page newest first. */
  readonly flip: boolean;
}

export interface ParsedRsm {
  readonly max?: number;
  readonly after?: string;
  /** '' asks for the last page (XEP-0059 §2.5). */
  readonly before?: string;
  readonly index?: number;
}

type FieldKind = 'jid' | 'date' | 'text' | 'list';

/** The fields this server understands, in the order the form lists them. */
const FIELDS: readonly { readonly var: string; readonly kind: FieldKind; readonly type: string; readonly label: string }[] = [
  { var: 'with', kind: 'jid', type: 'jid-single', label: 'Only messages to or from this JID' },
  { var: 'start', kind: 'date', type: 'text-single', label: 'Only messages at or after this time' },
  { var: 'end', kind: 'date', type: 'text-single', label: 'Only messages at or before this time' },
  { var: 'before-id', kind: 'text', type: 'text-single', label: 'Only messages before this archive id' },
  { var: 'after-id', kind: 'text', type: 'text-single', label: 'Only messages after this archive id' },
  { var: 'ids', kind: 'list', type: 'list-multi', label: 'Only the messages with these archive ids' },
  { var: FULLTEXT_FIELD, kind: 'text', type: 'text-single', label: 'Only messages containing all of these words' },
  { var: WITHTEXT_FIELD, kind: 'text', type: 'text-single', label: 'Only messages containing all of these words' },
];
const KNOWN = new Map(FIELDS.map((f) => [f.var, f]));

/** XEP-0313 §4.1.5: the query form, as an iq get for the query returns it. */
export function queryForm(): Element {
  return x('query', { xmlns: NS_MAM },
    x('x', { xmlns: NS_DATA, type: 'form' },
      x('field', { type: 'hidden', var: 'FORM_TYPE' }, x('value', null, NS_MAM)),
      FIELDS.map((f) => x('field', { type: f.type, var: f.var, label: f.label },
        // "the server MUST include a XEP-0122 <validate/> element that signals the list is open"
        f.kind === 'list' ? x('validate', { xmlns: NS_XDATA_VALIDATE, datatype: 'xs:string' }, x('open')) : undefined)),
    ),
  );
}

/** Reads a <query xmlns='urn:xmpp:mam:2'/>; throws the StanzaError a client gets for bad input. */
export function parseQuery(query: Element): ParsedQuery {
  if (query.attrs.node !== undefined) throw new StanzaError('item-not-found', 'This archive has no nodes');
  const out: { -readonly [K in keyof ParsedQuery]?: ParsedQuery[K] } = { flip: false };
  if (query.attrs.queryid !== undefined) out.queryId = query.attrs.queryid;
  let form: Element | undefined;
  let set: Element | undefined;
  for (const child of query.elements) {
    const ns = child.attrs.xmlns ?? NS_MAM;
    if (child.name === 'x' && ns === NS_DATA) {
      if (form) throw new StanzaError('bad-request', 'Only one data form is allowed');
      form = child;
    } else if (child.name === 'set' && ns === NS_RSM) {
      if (set) throw new StanzaError('bad-request', 'Only one result set element is allowed');
      set = child;
    } else if (child.name === 'flip-page' && ns === NS_MAM) {
      out.flip = true;
    }
  }
  if (form) readForm(form, out);
  out.rsm = set ? parseRsm(set) : {};
  return out as ParsedQuery;
}

function readForm(form: Element, out: { -readonly [K in keyof ParsedQuery]?: ParsedQuery[K] }): void {
  if (form.attrs.type !== 'submit') throw new StanzaError('bad-request', "The query form must be of type 'submit'");
  const seen = new Set<string>();
  for (const field of childrenIn(form, 'field', NS_DATA)) {
    const name = field.attrs.var;
    if (name === undefined) throw new StanzaError('bad-request', 'A form field has no var');
    if (seen.has(name)) throw new StanzaError('bad-request', `Field ${name} is given twice`);
    seen.add(name);
    const values = childrenIn(field, 'value', NS_DATA).map((v) => v.text());
    if (name === 'FORM_TYPE') {
      if (values.length !== 1 || values[0] !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS_MAM}`);
      continue;
    }
    const spec = KNOWN.get(name);
    // XEP-0313 §4.1.5: "If a client includes a form field that the server does not recognise,
    // the server MUST respond with a 'feature-not-implemented' error."
    if (spec === undefined) throw new StanzaError('feature-not-implemented', `Field ${name} is not supported`);
    if (spec.kind === 'list') {
      const ids = values.map((v) => v.trim()).filter((v) => v !== '');
      if (ids.length > 0) out.ids = ids;
      continue;
    }
    if (values.length > 1) throw new StanzaError('bad-request', `Field ${name} takes one value`);
    const raw = values[0] ?? '';
    if (spec.kind === 'text' && (name === FULLTEXT_FIELD || name === WITHTEXT_FIELD)) {
      if (raw.trim() === '') continue; // XEP-0431: the search applies when the field is non-empty
      if (out.text !== undefined) throw new StanzaError('bad-request', 'Only one full-text search field is allowed');
      out.text = raw;
      continue;
    }
    const value = raw.trim();
    if (value === '') continue;
    switch (name) {
      case 'with': {
        const jid = Jid.tryParse(value);
        if (jid === undefined) throw new StanzaError('jid-malformed', `"${value}" is not a valid JID`);
        out.with = jid;
        break;
      }
      case 'start':
        out.start = parseDateTime(value, 'start');
        break;
      case 'end':
        out.end = parseDateTime(value, 'end');
        break;
      case 'before-id':
        out.beforeId = value;
        break;
      case 'after-id':
        out.afterId = value;
        break;
    }
  }
}

/** Children named `name` in namespace `ns`, `parent` being in `ns` itself (declared on it or inherited). */
function childrenIn(parent: Element, name: string, ns: string): Element[] {
  return parent.elements.filter((c) => c.name === name && (c.attrs.xmlns ?? ns) === ns);
}

/** XEP-0059 request elements: max, after, before (empty: the last page) and index. */
function parseRsm(set: Element): ParsedRsm {
  const out: { -readonly [K in keyof ParsedRsm]?: ParsedRsm[K] } = {};
  for (const child of set.elements) {
    if ((child.attrs.xmlns ?? NS_RSM) !== NS_RSM) continue;
    const text = child.text().trim();
    switch (child.name) {
      case 'max':
        out.max = parseCount(text, 'max');
        break;
      case 'index':
        out.index = parseCount(text, 'index');
        break;
      case 'after':
        // §2.2: <after/> names the last item of the previous page; without one it means nothing.
        if (text === '') throw new StanzaError('bad-request', '<after/> needs an item id');
        out.after = text;
        break;
      case 'before':
        out.before = text;
        break;
    }
  }
  if (out.index !== undefined && (out.after !== undefined || out.before !== undefined)) {
    throw new StanzaError('bad-request', '<index/> cannot be combined with <after/> or <before/>');
  }
  return out;
}

function parseCount(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new StanzaError('bad-request', `<${what}/> must be a non-negative integer`);
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/** XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) to ms since the epoch; bad-request otherwise. */
export function parseDateTime(value: string, field: string): number {
  const m = DATE_TIME.exec(value);
  const bad = () => new StanzaError('bad-request', `Field ${field} is not a XEP-0082 DateTime: "${value}"`);
  if (m === null) throw bad();
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const ms = m[7] === undefined ? 0 : Number((m[7] + '00').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) throw bad();
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(hour, minute, second, ms);
  if (date.getUTCDate() !== day) throw bad(); // 2024-02-30 and the like
  const local = date.getTime();
  let offset = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw bad();
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return local - offset;
}

/** XEP-0082 DateTime of a timestamp. */
export function formatDateTime(ts: number): string {
  return new Date(ts).toISOString();
}
