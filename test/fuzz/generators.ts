// Generators of hostile XMPP input for the fuzz suites (fast-check): valid stanzas to start
// from, mutations that break them in the ways attackers and broken clients do, and
// pathological shapes (huge, deep, wide, entity bombs).
import fc from 'fast-check';

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost' version='1.0'>`;

/** Runs per property: XMPPD_FUZZ_RUNS (long mode, e.g. 1000000) or the CI default. */
export function runs(ciDefault: number): number {
  const env = Number(process.env.XMPPD_FUZZ_RUNS);
  return Number.isInteger(env) && env > 0 ? env : ciDefault;
}

/** A fixed seed in CI, so failures reproduce; XMPPD_FUZZ_SEED picks another. */
export function seed(): number {
  const env = Number(process.env.XMPPD_FUZZ_SEED);
  return Number.isInteger(env) ? env : 0x5eed;
}

const names = fc.constantFrom('message', 'presence', 'iq', 'body', 'x', 'query', 'item', 'a', 'b:c', 'stream:features', 'ns1:el', 'é', 'data');
const attrNames = fc.constantFrom('to', 'from', 'id', 'type', 'xml:lang', 'xmlns', 'xmlns:b', 'xmlns:ns1', 'b:attr', 'x', 'jid', 'h');
const textChars = fc.constantFrom('a', 'Z', ' ', '\n', '\t', '&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#65;', '&#x1F600;', 'é', '€', '😀', ']]', '>', '0');
const text = fc.array(textChars, { maxLength: 12 }).map((a) => a.join(''));
const attrValue = fc.array(fc.constantFrom('a', '1', ' ', '&amp;', '&lt;', '&#x9;', 'ü', '@', '/', 'localhost', 'urn:x'), { maxLength: 8 }).map((a) => a.join(''));

interface Tree { name: string; attrs: [string, string][]; children: (Tree | string)[] }

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.record({
    name: names,
    attrs: fc.uniqueArray(fc.tuple(attrNames, attrValue), { maxLength: 4, selector: (t) => t[0] }),
    children: fc.array(fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, tie('node')), { maxLength: 4 }),
  }),
})).node;

function serialise(t: Tree, top: boolean): string {
  let s = '<' + t.name;
  const attrs = top && !t.attrs.some(([k]) => k === 'xmlns') ? [...t.attrs] : t.attrs;
  for (const [k, v] of attrs) {
    // Declare prefixes used in names so that most generated stanzas are namespace-well-formed.
    if (k === 'xmlns:b' || k === 'xmlns:ns1') s += ` ${k}='urn:x:${k.slice(6)}'`;
    else s += ` ${k}='${v}'`;
  }
  if (t.name.includes(':') && !attrs.some(([k]) => k === 'xmlns:' + t.name.split(':')[0])) s += ` xmlns:${t.name.split(':')[0]}='urn:x:p'`;
  if (attrs.some(([k]) => k === 'b:attr') && !attrs.some(([k]) => k === 'xmlns:b')) s += ` xmlns:b='urn:x:b'`;
  if (t.children.length === 0) return s + '/>';
  s += '>';
  for (const c of t.children) s += typeof c === 'string' ? c : serialise(c, false);
  return s + `</${t.name}>`;
}

/** A mostly well-formed stanza (some trip namespace or duplicate-attribute rules, which is fine). */
export const stanza = tree.map((t) => serialise(t, true));

/** Tokens that break parsers: restricted XML, bad references, stray markup, bad bytes. */
const hostile = [
  '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>', '<!ENTITY lol "lol">', '&lol;', '&a;', '&#0;', '&#xD800;', '&#1114112;', '&amp', '&;', '&#;',
  '<!-- c -->', '<?pi x?>', "<?xml version='1.0'?>", '<![CDATA[x]]>', ']]>', '</stream:stream>', '</message>', '</x>', '<', '>', '/>', '"', "'", '=',
  '<stream:stream>', '<foo:bar/>', 'xmlns:foo=""', "xmlns='http://www.w3.org/2000/xmlns/'", "xmlns:xml='urn:x'", "xmlns:xmlns='urn:x'", 'xml:lang=',
  '\u0000', '\u0001', '\uFFFE', '\uD800', '\r\n', '\r', ' ', 'é', '<a a="1" a="2"/>', '<a:b xmlns:a=""/>', '<1/>', '<-x/>', '<x y/>', '<x y=z/>',
  "<message to='not a jid@@localhost'><body>x</body></message>", "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
  "<r xmlns='urn:xmpp:sm:3'/>", "<a xmlns='urn:xmpp:sm:3' h='99999999999'/>", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
];
const hostileBytes = [Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xef, 0xbf, 0xbe]), Buffer.from([0x80])];

type Mutation =
  | { kind: 'insert'; at: number; what: number }
  | { kind: 'insertBytes'; at: number; what: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), what: fc.nat(hostile.length - 1) }),
  fc.record({ kind: fc.constant('insertBytes' as const), at: fc.nat(), what: fc.nat(hostileBytes.length - 1) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(input: Buffer, muts: Mutation[]): Buffer {
  let b = input;
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case 'insert': b = Buffer.concat([b.subarray(0, at), Buffer.from(hostile[m.what]!), b.subarray(at)]); break;
      case 'insertBytes': b = Buffer.concat([b.subarray(0, at), hostileBytes[m.what]!, b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]); break;
      case 'flip': if (at < b.length) { b = Buffer.from(b); b[at] = b[at]! ^ (1 << m.bit); } break;
      case 'duplicate': b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)]); break;
      case 'truncate': b = b.subarray(0, at); break;
    }
  }
  return b;
}

/** Pathological but syntactically plausible shapes, sized around the limits given. */
export function pathological(limits: { maxStanzaBytes: number; maxDepth: number; maxAttributes: number }): fc.Arbitrary<string> {
  const { maxStanzaBytes: max, maxDepth, maxAttributes } = limits;
  return fc.oneof(
    // Huge text and attribute values, just under or over the stanza limit.
    fc.integer({ min: max - 200, max: max + 200 }).map((n) => `<message><body>${'x'.repeat(n)}</body></message>`),
    fc.integer({ min: max - 200, max: max + 200 }).map((n) => `<message id='${'a'.repeat(n)}'/>`),
    fc.integer({ min: 1, max: 2 * max }).map((n) => `<message><body>${'é'.repeat(n)}</body></message>`),
    // Deep nesting around the depth limit, closed or not.
    fc.tuple(fc.integer({ min: maxDepth - 2, max: maxDepth * 4 }), fc.boolean()).map(([d, close]) => '<a>'.repeat(d) + (close ? '</a>'.repeat(d) : '')),
    // Many attributes, around the limit.
    fc.integer({ min: maxAttributes - 2, max: maxAttributes * 3 }).map((n) => `<message ${Array.from({ length: n }, (_, i) => `a${i}='${i}'`).join(' ')}/>`),
    // Many namespace declarations (prefix list bound) and long names.
    fc.integer({ min: 1, max: 200 }).map((n) => `<x ${Array.from({ length: n }, (_, i) => `xmlns:p${i}='urn:${i}'`).join(' ')}><p0:y/></x>`),
    fc.integer({ min: 1, max: max * 2 }).map((n) => `<${'n'.repeat(n)}/>`),
    fc.integer({ min: 1, max: max * 2 }).map((n) => `<message ${'n'.repeat(n)}='1'/>`),
    // Billion laughs and friends.
    fc.constant('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'),
    fc.constant(`<!DOCTYPE x SYSTEM "file:///etc/passwd"><x>&xxe;</x>`),
    fc.constant('<message><body>&lol9;</body></message>'),
    // Many stanzas of whitespace and keepalives, several roots and stray closers.
    fc.integer({ min: 1, max: 5000 }).map((n) => ' \n'.repeat(n)),
    fc.integer({ min: 1, max: 100 }).map((n) => '</a>'.repeat(n)),
    fc.integer({ min: 1, max: 20 }).map((n) => HEADER.repeat(n)),
    fc.integer({ min: 1, max: 2000 }).map((n) => '<![CDATA['.repeat(n)),
    fc.integer({ min: 1, max: 2000 }).map((n) => '&'.repeat(n)),
  );
}

export interface Case {
  /** Bytes after the stream header (the header is part of it when withHeader is false). */
  body: Buffer;
  /** Cut points for delivery in several chunks. */
  cuts: number[];
}

/** A stream body: valid stanzas, then mutated, with pathological pieces mixed in. */
export function streamBody(limits: { maxStanzaBytes: number; maxDepth: number; maxAttributes: number }, opts: { header?: boolean } = {}): fc.Arbitrary<Case> {
  return fc.record({
    parts: fc.array(fc.oneof({ weight: 4, arbitrary: stanza }, { weight: 1, arbitrary: pathological(limits) }, { weight: 1, arbitrary: fc.constantFrom(...hostile) }), { minLength: 1, maxLength: 6 }),
    muts: fc.array(mutation, { maxLength: 4 }),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    header: opts.header ? fc.oneof(fc.constant(HEADER), fc.constantFrom(...headerVariants)) : fc.constant(''),
  }).map(({ parts, muts, cuts, header }) => {
    const body = mutate(Buffer.from(header + parts.join('')), muts);
    return { body, cuts: cuts.map((c) => (body.length === 0 ? 0 : c % body.length)) };
  });
}

/** Stream headers: right, and wrong in every way RFC 6120 §4.8-§4.9 names. */
export const headerVariants = [
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost' version='1.0'>`,
  `<stream xmlns='${NS_STREAM}' to='localhost' version='1.0'>`,
  `<stream:stream xmlns='jabber:server' xmlns:stream='${NS_STREAM}' to='localhost' version='1.0'>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='elsewhere.example' version='1.0'>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost'>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost' version='0.9'>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost' version='x'>`,
  `<s:stream xmlns='jabber:client' xmlns:s='${NS_STREAM}' to='localhost' version='1.0'>`,
  `<stream:stream xmlns='jabber:client' to='localhost' version='1.0'>`,
  `<?xml version='1.0' encoding='UTF-16'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' version='1.0'>`,
  `<message/>`,
  `</stream:stream>`,
  `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='localhost' version='1.0'/>`,
];

/** Splits `buf` at the cut points. */
export function split(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let a = 0;
  for (const p of [...new Set(cuts)].sort((m, n) => m - n)) {
    if (p <= a || p >= buf.length) continue;
    out.push(buf.subarray(a, p));
    a = p;
  }
  out.push(buf.subarray(a));
  return out;
}
