import { Element, x } from '../../src/xml/element';
import { StreamError } from '../../src/errors';
import { StreamParser, DEFAULT_PARSER_LIMITS, type StreamParserLimits } from '../../src/xml/stream-parser';
import { parseXml } from '../../src/xml/parse';
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const HEADER = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='capulet.lit' version='1.0' xml:lang='en'>`;
const FOOTER = '</stream:stream>';

interface Result {
  opens: [string, Record<string, string>][];
  els: Element[];
  closes: number;
  errors: StreamError[];
  parser: StreamParser;
}

function harness(limits?: Partial<StreamParserLimits>, hooks: { onElement?: (el: Element, r: Result) => void } = {}): Result {
  const r: Result = { opens: [], els: [], closes: 0, errors: [], parser: undefined as unknown as StreamParser };
  r.parser = new StreamParser(
    {
      onOpen: (name, attrs) => r.opens.push([name, attrs]),
      onElement: (el) => {
        r.els.push(el);
        hooks.onElement?.(el, r);
      },
      onClose: () => void r.closes++,
      onError: (e) => r.errors.push(e),
    },
    limits,
  );
  return r;
}

function feed(chunks: (string | Buffer)[], limits?: Partial<StreamParserLimits>): Result {
  const r = harness(limits);
  for (const c of chunks) r.parser.write(c);
  return r;
}

function parse(s: string | Buffer, limits?: Partial<StreamParserLimits>): Result {
  return feed([s], limits);
}

/** The first (only) error condition, or undefined. */
function cond(r: Result): string | undefined {
  expect(r.errors.length).toBeLessThanOrEqual(1);
  return r.errors[0]?.condition;
}

function stanzas(body: string): Result {
  return parse(HEADER + body);
}

/** Splits a buffer at the given cut points. */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const out: Buffer[] = [];
  let a = 0;
  for (const p of [...points].sort((m, n) => m - n)) {
    out.push(buf.subarray(a, p));
    a = p;
  }
  out.push(buf.subarray(a));
  return out;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

describe('StreamParser: stream structure', () => {
  test('reports the stream header as written, stanzas with their namespace, and the close', () => {
    const r = parse(HEADER + "<message to='juliet@capulet.lit' type='chat'><body>hi</body></message>" + FOOTER);
    expect(r.errors).toEqual([]);
    expect(r.opens).toEqual([
      ['stream:stream', { xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM, to: 'capulet.lit', version: '1.0', 'xml:lang': 'en' }],
    ]);
    expect(r.els).toEqual([x('message', { to: 'juliet@capulet.lit', type: 'chat', xmlns: 'jabber:client' }, x('body', null, 'hi'))]);
    expect(r.closes).toBe(1);
  });

  test('an XML declaration is allowed at the very start, also with encoding and standalone', () => {
    for (const decl of ["<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>"]) {
      const r = parse(decl + HEADER + '<presence/>');
      expect(r.errors).toEqual([]);
      expect(r.els).toHaveLength(1);
    }
    // After a byte order mark too.
    expect(parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("<?xml version='1.0'?>" + HEADER)])).errors).toEqual([]);
  });

  test('XML declaration problems', () => {
    expect(cond(parse("<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER))).toBe('unsupported-encoding');
    expect(cond(parse("<?xml versio='1.0'?>" + HEADER))).toBe('not-well-formed');
    expect(cond(parse('<?xml?>' + HEADER))).toBe('not-well-formed');
    expect(cond(parse("<?xml version='1.0'" + ' '.repeat(600)))).toBe('not-well-formed');
    // Not at the very start: it is a processing instruction.
    expect(cond(parse(" <?xml version='1.0'?>" + HEADER))).toBe('restricted-xml');
    expect(cond(parse("<?xml version='1.0'?><?xml version='1.0'?>" + HEADER))).toBe('restricted-xml');
    expect(cond(parse("<?xml-stylesheet href='a'?>" + HEADER))).toBe('restricted-xml');
  });

  test('whitespace keepalives between stanzas are ignored', () => {
    const r = feed([HEADER, ' ', '\n', '\r\n\t ', '<presence/>', '  \n', ' ', '<presence/>\n', '\n']);
    expect(r.errors).toEqual([]);
    expect(r.els).toHaveLength(2);
  });

  test('text outside stanzas', () => {
    expect(cond(parse('hello' + HEADER))).toBe('not-well-formed');
    expect(cond(stanzas('<presence/>hello<presence/>'))).toBe('bad-format');
    expect(cond(stanzas('&amp;'))).toBe('bad-format');
    expect(cond(stanzas('<![CDATA[x]]>'))).toBe('bad-format');
    expect(cond(parse('<![CDATA[x]]>' + HEADER))).toBe('not-well-formed');
  });

  test('multiple roots and junk after the close are not well-formed', () => {
    expect(cond(parse(HEADER + FOOTER + HEADER))).toBe('not-well-formed');
    expect(cond(parse(HEADER + FOOTER + '<presence/>'))).toBe('not-well-formed');
    expect(cond(parse(HEADER + FOOTER + 'x'))).toBe('not-well-formed');
    const r = parse(HEADER + FOOTER + ' \n');
    expect(r.errors).toEqual([]);
    expect(r.closes).toBe(1);
  });

  test('a self-closing root opens and closes', () => {
    const r = parse(`<stream:stream xmlns:stream='${NS_STREAM}' xmlns='jabber:client'/>`);
    expect(r.opens).toHaveLength(1);
    expect(r.closes).toBe(1);
  });

  test('the root needs its prefix bound; an end tag needs a start tag', () => {
    expect(cond(parse("<stream:stream xmlns='jabber:client'>"))).toBe('bad-namespace-prefix');
    expect(cond(parse('</stream:stream>'))).toBe('not-well-formed');
  });

  test('end(): between stanzas is fine, inside markup or a stanza is not', () => {
    let r = parse(HEADER + '<presence/>');
    r.parser.end();
    expect(r.errors).toEqual([]);
    r = parse(HEADER + '<message><body>hi');
    r.parser.end();
    expect(cond(r)).toBe('not-well-formed');
    r = parse(HEADER + '<pres');
    r.parser.end();
    expect(cond(r)).toBe('not-well-formed');
    r = parse(Buffer.from([0x3c, 0xc3]));
    r.parser.end();
    expect(cond(r)).toBe('not-well-formed');
  });
});

describe('StreamParser: restricted XML (RFC 6120 §11.1)', () => {
  test('DOCTYPE', () => {
    expect(cond(parse('<!DOCTYPE stream:stream>' + HEADER))).toBe('restricted-xml');
    expect(cond(parse("<?xml version='1.0'?>\n<!DOCTYPE x SYSTEM 'http://evil/x.dtd'>" + HEADER))).toBe('restricted-xml');
    expect(cond(stanzas('<!DOCTYPE x>'))).toBe('restricted-xml');
  });

  test('billion laughs is refused at the DOCTYPE, without any expansion', () => {
    let doc = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">';
    for (let k = 1; k <= 9; k++) doc += `<!ENTITY lol${k} "${`&lol${k === 1 ? '' : k - 1};`.repeat(10)}">`;
    doc += ']>' + HEADER + '<message><body>&lol9;</body></message>';
    const t0 = Date.now();
    const r = parse(doc);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(cond(r)).toBe('restricted-xml');
    expect(r.els).toEqual([]);
    expect(r.opens).toEqual([]);
  });

  test('entity declarations and references to them', () => {
    expect(cond(stanzas('<!ENTITY a "b">'))).toBe('restricted-xml');
    expect(cond(stanzas('<message><body>&xxe;</body></message>'))).toBe('restricted-xml');
    expect(cond(stanzas("<message id='&nbsp;'/>"))).toBe('restricted-xml');
  });

  test('comments, anywhere', () => {
    expect(cond(parse('<!-- c -->' + HEADER))).toBe('restricted-xml');
    expect(cond(stanzas('<!-- c --><presence/>'))).toBe('restricted-xml');
    expect(cond(stanzas('<message><!-- c --></message>'))).toBe('restricted-xml');
  });

  test('processing instructions, anywhere', () => {
    expect(cond(stanzas('<?foo bar?>'))).toBe('restricted-xml');
    expect(cond(stanzas('<message><?foo?></message>'))).toBe('restricted-xml');
    expect(cond(stanzas("<message><?xml version='1.0'?></message>"))).toBe('restricted-xml');
  });

  test('the five predefined entities and character references are decoded', () => {
    const r = stanzas("<message id='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;'><body>&lt;&gt;&amp;&quot;&apos;&#169;&#x1F600;&#x10FFFF;</body></message>");
    expect(r.errors).toEqual([]);
    expect(r.els[0]!.attrs.id).toBe(`<>&"'AB`);
    expect(r.els[0]!.getChildText('body')).toBe(`<>&"'©😀\u{10FFFF}`);
  });

  test('references to characters XML does not allow, and malformed references', () => {
    for (const ref of ['&#0;', '&#x0;', '&#8;', '&#xB;', '&#xFFFE;', '&#xFFFF;', '&#xD800;', '&#xDFFF;', '&#x110000;', '&#99999999999;']) {
      expect([ref, cond(stanzas(`<message><body>${ref}</body></message>`))]).toEqual([ref, 'not-well-formed']);
      expect([ref, cond(stanzas(`<message id='${ref}'/>`))]).toEqual([ref, 'not-well-formed']);
    }
    for (const ref of ['&;', '&#;', '&#x;', '&#12a;', '&#xG;', '& ', '&1a;', '&a b;', '&' + 'a'.repeat(60) + ';']) {
      expect([ref, cond(stanzas(`<message><body>${ref}</body></message>`))]).toEqual([ref, 'not-well-formed']);
    }
  });

  test('characters XML does not allow', () => {
    for (const ch of ['\u0000', '\u0001', '\u000b', '\u001f', '\ufffe', '\uffff']) {
      expect(cond(stanzas(`<message><body>a${ch}b</body></message>`))).toBe('not-well-formed');
      expect(cond(stanzas(`<message id='a${ch}b'/>`))).toBe('not-well-formed');
      expect(cond(stanzas(`<message><body><![CDATA[a${ch}b]]></body></message>`))).toBe('not-well-formed');
    }
    const r = stanzas('<message><body>\u0080\u009f\ud7ff\ue000\ufffd\t</body></message>');
    expect(r.errors).toEqual([]);
  });
});

describe('StreamParser: well-formedness', () => {
  const bad: [string, string][] = [
    ['mismatched tags', '<message><body></message></body>'],
    ['mismatched end tag name', '<message></messagex>'],
    ['mismatched prefix', '<message></stream:message>'],
    ['unquoted attribute', '<message id=a/>'],
    ['attribute without value', '<message id/>'],
    ['duplicate attribute', "<message id='a' id='b'/>"],
    ['duplicate expanded attribute', "<message xmlns:a='urn:x' xmlns:b='urn:x' a:id='1' b:id='2'/>"],
    ["'<' in attribute value", "<message id='a<b'/>"],
    ['attributes not separated', "<message id='a'to='b'/>"],
    ["']]>' in text", '<message><body>a]]>b</body></message>'],
    ['bad name start', '<1message/>'],
    ['bad name char', '<mes\u00d7sage/>'],
    ['empty name', '< message/>'],
    ['two colons', '<a:b:c/>'],
    ['leading colon', '<:a/>'],
    ['trailing colon attr', "<a b:='1'/>"],
    ['unterminated empty tag', '<a/ >'],
    ['junk in end tag', '<a></a b>'],
    ['bad markup', '<message><!foo></message>'],
    ['bad CDATA opener', '<message><![CDAT[x]]></message>'],
    ['xmlns prefix on element', '<xmlns:a/>'],
    ['rebinding xml', "<a xmlns:xml='urn:x'/>"],
    ['binding xmlns', "<a xmlns:xmlns='urn:x'/>"],
    ['binding to the xml namespace', "<a xmlns:x='http://www.w3.org/XML/1998/namespace'/>"],
    ['undeclaring a prefix', "<a xmlns:p=''/>"],
  ];
  test.each(bad)('%s', (_name, body) => {
    expect(cond(stanzas(body))).toBe('not-well-formed');
  });

  test('whitespace is allowed in the usual places', () => {
    const r = stanzas("<message\n\tid = 'a'  to=\"b\" ><body >x</body\n></message >");
    expect(r.errors).toEqual([]);
    expect(r.els[0]).toEqual(x('message', { id: 'a', to: 'b', xmlns: 'jabber:client' }, x('body', null, 'x')));
  });

  test('non-ASCII names', () => {
    const r = stanzas("<café xmlns='urn:x' ñ='1'><日本/></café>");
    expect(r.errors).toEqual([]);
    expect(r.els[0]).toEqual(x('café', { xmlns: 'urn:x', ñ: '1' }, x('日本')));
  });

  test('CDATA sections merge with the surrounding text', () => {
    const r = stanzas('<message><body>a<![CDATA[<b>&amp;]]]]>c&amp;<![CDATA[]]></body></message>');
    expect(r.errors).toEqual([]);
    expect(r.els[0]!.getChild('body')!.children).toEqual(['a<b>&amp;]]c&']);
  });

  test('line ends are normalised in text; tabs and line ends become spaces in attribute values', () => {
    const r = stanzas("<message id='a\tb\nc\r\nd\re&#10;f'><body>1\r\n2\r3\n4&#13;5</body></message>");
    expect(r.errors).toEqual([]);
    expect(r.els[0]!.attrs.id).toBe('a b c d e\nf');
    expect(r.els[0]!.getChildText('body')).toBe('1\n2\n3\n4\r5');
  });

  test('attribute names that are Object.prototype properties are kept as own attributes', () => {
    const r = stanzas("<message __proto__='a' constructor='b' toString='c'/>");
    expect(r.errors).toEqual([]);
    const attrs = r.els[0]!.attrs;
    expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
    expect(Object.keys(attrs).sort()).toEqual(['__proto__', 'constructor', 'toString', 'xmlns']);
    expect(r.els[0]!.toString()).toBe('<message __proto__="a" constructor="b" toString="c" xmlns="jabber:client"/>');
    expect(cond(stanzas("<message constructor='a' constructor='b'/>"))).toBe('not-well-formed');
  });

  test('errors are reported once, later input is ignored, write() never throws', () => {
    const r = stanzas('<a></b>');
    r.parser.write('<presence/>');
    r.parser.write(Buffer.from([0xff]));
    r.parser.end();
    expect(r.errors).toHaveLength(1);
    expect(r.els).toEqual([]);
  });

  test('write() and end() called from a handler run after the current chunk', () => {
    const seen: string[] = [];
    const p: StreamParser = new StreamParser({
      onOpen: () => seen.push('open'),
      onElement: (el) => {
        seen.push(el.name);
        if (el.name === 'a') p.write('<c/>');
        if (el.name === 'c') p.end();
      },
      onClose: () => seen.push('close'),
      onError: (e) => seen.push('error ' + e.condition),
    });
    p.write(HEADER + '<a/><b/>');
    p.write('<d/>');
    expect(seen).toEqual(['open', 'a', 'b', 'c']);
  });

  test('a throwing handler becomes internal-server-error instead of a throw from write()', () => {
    const errors: StreamError[] = [];
    const p = new StreamParser({
      onOpen() {},
      onElement() {
        throw new Error('bug');
      },
      onClose() {},
      onError: (e) => errors.push(e),
    });
    expect(() => p.write(HEADER + '<presence/><presence/>')).not.toThrow();
    expect(errors.map((e) => e.condition)).toEqual(['internal-server-error']);
  });
});

describe('StreamParser: UTF-8', () => {
  test.each([
    ['C3 28 (bad continuation)', [0xc3, 0x28]],
    ['lone continuation byte', [0x80]],
    ['overlong /', [0xc0, 0xaf]],
    ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['F5 lead byte', [0xf5, 0x80, 0x80, 0x80]],
    ['FF byte', [0xff]],
    ['truncated sequence followed by ASCII', [0xe2, 0x82, 0x41]],
  ])('%s is not-well-formed, whole or byte by byte', (_name, bytes) => {
    const buf = Buffer.concat([Buffer.from(HEADER + '<message><body>a'), Buffer.from(bytes), Buffer.from('b</body></message>')]);
    expect(cond(parse(buf))).toBe('not-well-formed');
    const r = feed([...buf].map((b) => Buffer.from([b])));
    r.parser.end();
    expect(cond(r)).toBe('not-well-formed');
  });

  test('multibyte characters split at every point across chunks', () => {
    const text = 'é€😀中';
    const buf = Buffer.from(HEADER + `<message id='${text}'><body>${text}</body></message>`);
    const start = Buffer.byteLength(HEADER);
    for (let p = start; p < buf.length; p++) {
      for (const q of [p + 1, p + 2, p + 3]) {
        const r = feed(cut(buf, [p, Math.min(q, buf.length)]));
        expect(r.errors).toEqual([]);
        expect(r.els[0]!.attrs.id).toBe(text);
        expect(r.els[0]!.getChildText('body')).toBe(text);
      }
    }
  });
});

describe('StreamParser: chunking', () => {
  const doc =
    "<?xml version='1.0' encoding='UTF-8'?>\n" +
    HEADER +
    '\n' +
    "<message to='juliet@capulet.lit/balcony' id='m&amp;1' type='chat' xml:lang='en'>" +
    '<body>Wherefore &lt;art&gt; thou, Romeo? é€😀 &#x1F600;&#233; ]] ] a]b</body>' +
    "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='a:b'>x<br/>y</p></body></html>" +
    "<x:data xmlns:x='jabber:x:data' x:type='form'><x:field var='a'><value>1</value></x:field></x:data>" +
    '<body2><![CDATA[<cdata> ]] ]]]]><![CDATA[> & more\r\nline\rend]]></body2>' +
    '</message>\r\n \t' +
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>" +
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>" +
    "<presence><show>away</show><status  xml:lang = \"en\" >Gone\tfishing\r\n</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>" +
    ' ' +
    FOOTER;
  const buf = Buffer.from(doc);

  function snapshot(r: Result) {
    return { errors: r.errors, opens: r.opens, els: r.els, closes: r.closes };
  }
  const whole = snapshot(parse(buf));

  test('the reference parse is clean', () => {
    expect(whole.errors).toEqual([]);
    expect(whole.els).toHaveLength(4);
    expect(whole.closes).toBe(1);
    expect(whole.els[0]!.getChildText('body')).toBe('Wherefore <art> thou, Romeo? é€😀 😀é ]] ] a]b');
    expect(whole.els[0]!.getChildText('body2')).toBe('<cdata> ]] ]]> & more\nline\nend');
  });

  test('1-byte chunks give the same result', () => {
    expect(snapshot(feed([...buf].map((b) => Buffer.from([b]))))).toEqual(whole);
  });

  test('1-character string chunks give the same result', () => {
    expect(snapshot(feed([...doc]))).toEqual(whole);
  });

  test('every single split point gives the same result', () => {
    for (let p = 1; p < buf.length; p++) expect(snapshot(feed(cut(buf, [p])))).toEqual(whole);
  });

  test('random chunkings give the same result', () => {
    const r = rng(7);
    for (let k = 0; k < 300; k++) {
      const n = 1 + Math.floor(r() * 40);
      const points = Array.from({ length: n }, () => Math.floor(r() * buf.length));
      expect(snapshot(feed(cut(buf, points)))).toEqual(whole);
    }
  });

  test("']]>' in text is caught wherever the chunks split it", () => {
    const s = HEADER + '<message><body>ab]]>cd</body></message>';
    for (let p = 1; p < s.length; p++) {
      expect(cond(feed([s.slice(0, p), s.slice(p)]))).toBe('not-well-formed');
    }
    for (let p = 1; p < s.length; p++) {
      const ok = HEADER + '<message><body>a]]b]>c] ]>d]</body></message>';
      expect(feed([ok.slice(0, p), ok.slice(p)]).els[0]!.getChildText('body')).toBe('a]]b]>c] ]>d]');
    }
  });

  test('entities, CDATA markers and CRLF split across chunks', () => {
    for (const body of ['a&amp;b&#x1F600;c', '<![CDATA[x]]>', 'a\r\nb', 'x]]]>'.slice(0, 3) + 'y', 'a&#13;\r\n']) {
      const s = HEADER + `<message id='${body.replace(/[<>\]]/g, '')}\r\n'><body>${body}</body></message>`;
      const ref = parse(s);
      expect(ref.errors).toEqual([]);
      const chars = feed([...s]);
      expect(chars.els).toEqual(ref.els);
    }
  });
});

describe('StreamParser: namespaces', () => {
  function one(body: string): Element {
    const r = stanzas(body);
    expect(r.errors).toEqual([]);
    expect(r.els).toHaveLength(1);
    return r.els[0]!;
  }

  test('stanzas get the stream default namespace; their children inherit without xmlns', () => {
    const el = one('<message><body>a</body><thread>t</thread></message>');
    expect(el).toEqual(x('message', { xmlns: 'jabber:client' }, x('body', null, 'a'), x('thread', null, 't')));
    expect(el.getChild('body', 'jabber:client')).toBeDefined();
  });

  test('a stanza that declares the namespace itself is the same', () => {
    expect(one("<message xmlns='jabber:client'><body>a</body></message>")).toEqual(one('<message><body>a</body></message>'));
  });

  test('prefixed top-level elements resolve: stream:features', () => {
    const el = one("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><foo/></stream:features>");
    expect(el).toEqual(
      x('features', { xmlns: NS_STREAM }, x('bind', { xmlns: 'urn:ietf:params:xml:ns:xmpp-bind' }), x('foo', { xmlns: 'jabber:client' })),
    );
    expect(one("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>").is('error', NS_STREAM)).toBe(true);
  });

  test('a prefixed element gets its local name and namespace; declarations used only by element names are dropped', () => {
    const el = one("<iq type='get'><foo:x xmlns:foo='urn:a'><foo:y/><z/></foo:x></iq>");
    expect(el).toEqual(x('iq', { type: 'get', xmlns: 'jabber:client' }, x('x', { xmlns: 'urn:a' }, x('y'), x('z', { xmlns: 'jabber:client' }))));
  });

  test('a prefixed element with its own default namespace: children in the default get xmlns', () => {
    const el = one("<iq><foo:x xmlns:foo='urn:a' xmlns='urn:b'><y/><foo:z/></foo:x></iq>");
    expect(el.getChild('x')).toEqual(x('x', { xmlns: 'urn:a' }, x('y', { xmlns: 'urn:b' }), x('z')));
  });

  test('nested namespace changes, back and forth', () => {
    const el = one("<message><a xmlns='urn:a'><b><c xmlns='jabber:client'><d/></c></b></a><e/></message>");
    expect(el).toEqual(
      x('message', { xmlns: 'jabber:client' }, x('a', { xmlns: 'urn:a' }, x('b', null, x('c', { xmlns: 'jabber:client' }, x('d')))), x('e')),
    );
  });

  test('a redundant redeclaration of the parent namespace is dropped', () => {
    const el = one("<message><a xmlns='urn:a'><b xmlns='urn:a' id='1'/></a></message>");
    expect(el.getChild('a')!.getChild('b')).toEqual(x('b', { id: '1' }));
  });

  test('undeclaring the default namespace', () => {
    const el = one("<message><a xmlns=''/></message>");
    expect(el.getChild('a')!.attrs.xmlns).toBe('');
  });

  test('declarations used by attribute names are kept where declared', () => {
    const el = one("<message xmlns:e='urn:e'><a e:x='1'/><b/></message>");
    expect(el).toEqual(x('message', { 'xmlns:e': 'urn:e', xmlns: 'jabber:client' }, x('a', { 'e:x': '1' }), x('b')));
    const el2 = one("<message><a xmlns:e='urn:e'><e:b e:x='1'/></a><c xmlns:f='urn:f'><f:d/></c></message>");
    expect(el2.getChild('a')).toEqual(x('a', { 'xmlns:e': 'urn:e' }, x('b', { 'e:x': '1', xmlns: 'urn:e' })));
    expect(el2.getChild('c')).toEqual(x('c', null, x('d', { xmlns: 'urn:f' })));
  });

  test('a prefix declared on the stream root and used in an attribute name is copied onto the stanza', () => {
    const r = parse(
      `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' xmlns:e='urn:e'>` + "<message><a e:x='1'/></message><presence e:y='2'/><iq/>",
    );
    expect(r.errors).toEqual([]);
    expect(r.els[0]).toEqual(x('message', { xmlns: 'jabber:client', 'xmlns:e': 'urn:e' }, x('a', { 'e:x': '1' })));
    expect(r.els[1]).toEqual(x('presence', { 'e:y': '2', 'xmlns:e': 'urn:e', xmlns: 'jabber:client' }));
    expect(r.els[2]).toEqual(x('iq', { xmlns: 'jabber:client' }));
    // Each stanza re-parses standalone.
    expect(parseXml(r.els[0]!.toString())).toEqual(r.els[0]);
  });

  test('xml: attributes keep their qualified names and need no declaration', () => {
    const el = one("<message xml:lang='en'><body xml:lang='fr'>x</body></message>");
    expect(el).toEqual(x('message', { 'xml:lang': 'en', xmlns: 'jabber:client' }, x('body', { 'xml:lang': 'fr' }, 'x')));
  });

  test('unbound prefixes', () => {
    expect(cond(stanzas('<foo:message/>'))).toBe('bad-namespace-prefix');
    expect(cond(stanzas('<message><a:b/></message>'))).toBe('bad-namespace-prefix');
    expect(cond(stanzas("<message a:b='1'/>"))).toBe('bad-namespace-prefix');
    // A prefix is only in scope inside the element declaring it.
    expect(cond(stanzas("<message><a xmlns:p='urn:p'/><p:b/></message>"))).toBe('bad-namespace-prefix');
    // Declaring after using, on the same element, is fine.
    expect(stanzas("<p:message p:id='1' xmlns:p='urn:p'/>").errors).toEqual([]);
  });
});

describe('StreamParser: reset()', () => {
  test('a new stream after reset, with a new XML declaration', () => {
    const r = parse("<?xml version='1.0'?>" + HEADER + '<presence/>');
    r.parser.reset();
    r.parser.write("<?xml version='1.0'?>" + HEADER + '<iq/>' + FOOTER);
    expect(r.errors).toEqual([]);
    expect(r.opens).toHaveLength(2);
    expect(r.els.map((e) => e.name)).toEqual(['presence', 'iq']);
    expect(r.closes).toBe(1);
  });

  test('reset clears a half-read stanza, a carried UTF-8 byte and an error', () => {
    const r = feed([HEADER, '<message><body>a', Buffer.from([0xc3])]);
    r.parser.reset();
    r.parser.write(HEADER + '<iq/>');
    expect(r.errors).toEqual([]);
    expect(r.els.map((e) => e.name)).toEqual(['iq']);
    r.parser.write('<!-- -->');
    expect(cond(r)).toBe('restricted-xml');
    r.parser.reset();
    r.parser.write(HEADER + '<presence/>');
    expect(r.els.map((e) => e.name)).toEqual(['iq', 'presence']);
  });

  test('reset from inside onElement discards the rest of the chunk (STARTTLS injection)', () => {
    const r = harness(undefined, {
      onElement: (el, res) => {
        if (el.name === 'starttls') res.parser.reset();
      },
    });
    r.parser.write(HEADER + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set'><injected/></iq>");
    expect(r.els.map((e) => e.name)).toEqual(['starttls']);
    r.parser.write(HEADER + '<presence/>');
    expect(r.errors).toEqual([]);
    expect(r.opens).toHaveLength(2);
    expect(r.els.map((e) => e.name)).toEqual(['starttls', 'presence']);
  });
});

describe('StreamParser: limits', () => {
  const max = 1000;

  test('defaults', () => {
    expect(DEFAULT_PARSER_LIMITS).toEqual({ maxStanzaBytes: 262144, maxDepth: 32, maxAttributes: 64 });
  });

  test('a stanza of exactly maxStanzaBytes bytes passes, one byte more does not', () => {
    for (const fill of ['a', 'é', '😀', '€']) {
      const shell = '<message><body></body></message>';
      const room = max - shell.length;
      const n = Math.floor(room / Buffer.byteLength(fill));
      const pad = 'a'.repeat(room - n * Buffer.byteLength(fill));
      const ok = `<message><body>${pad}${fill.repeat(n)}</body></message>`;
      expect(Buffer.byteLength(ok)).toBe(max);
      const tooBig = ok.replace('<body>', '<body>b');
      for (const chunks of [[HEADER + ok + tooBig], [HEADER, ok, tooBig], [...(HEADER + ok + tooBig)]]) {
        const r = feed(chunks, { maxStanzaBytes: max });
        expect(r.els).toHaveLength(1);
        expect(cond(r)).toBe('policy-violation');
      }
    }
  });

  test('an endless element is cut off after roughly maxStanzaBytes', () => {
    for (const opening of ['<message><body>', "<message id='", '<message a0="0" ', '<messageeeee', '<message><body><![CDATA[']) {
      const r = harness({ maxStanzaBytes: 10000 });
      r.parser.write(HEADER + opening);
      let sent = 0;
      const filler = opening === '<message a0="0" ' ? 'b="1" '.repeat(50).replace(/b/g, () => 'b' + sent++) : 'a'.repeat(300);
      let fed = 0;
      while (r.errors.length === 0 && fed < 1e6) {
        const chunk = opening === '<message a0="0" ' ? filler.replace(/b\d+/g, (m) => m + '_' + fed) : filler;
        r.parser.write(chunk);
        fed += chunk.length;
      }
      expect([opening, cond(r)]).toEqual([opening, 'policy-violation']);
      expect(fed).toBeLessThan(10000 + 400);
    }
  });

  test('one huge write is checked before all of it is parsed into a tree', () => {
    const r = harness({ maxStanzaBytes: 5000 });
    r.parser.write(HEADER + '<message><body>' + 'a'.repeat(10_000_000) + '</body></message>');
    expect(cond(r)).toBe('policy-violation');
  });

  test('an endless stream header is cut off too', () => {
    const r = harness({ maxStanzaBytes: 5000 });
    r.parser.write(`<stream:stream xmlns:stream='${NS_STREAM}' a='`);
    for (let k = 0; k < 100 && r.errors.length === 0; k++) r.parser.write('x'.repeat(1000));
    expect(cond(r)).toBe('policy-violation');
  });

  test('the limit applies to each stanza, not to the stream', () => {
    const r = feed([HEADER, '<presence/>'.repeat(1000)], { maxStanzaBytes: 100 });
    expect(r.errors).toEqual([]);
    expect(r.els).toHaveLength(1000);
  });

  test('depth: the stanza is depth 1', () => {
    const nest = (d: number) => '<a>'.repeat(d) + '</a>'.repeat(d);
    expect(stanzas(nest(32)).errors).toEqual([]);
    expect(cond(stanzas(nest(33)))).toBe('policy-violation');
    expect(cond(feed([HEADER, nest(5)], { maxDepth: 4 }))).toBe('policy-violation');
  });

  test('namespace prefixes in scope', () => {
    const decls = (n: number, from = 0) => Array.from({ length: n }, (_, k) => `xmlns:p${from + k}='urn:${from + k}'`).join(' ');
    // 64 in all, counting the predefined xml prefix and the stream root's xmlns:stream.
    expect(stanzas(`<message ${decls(40)}><a ${decls(22, 40)}/></message>`).errors).toEqual([]);
    expect(cond(stanzas(`<message ${decls(40)}><a ${decls(23, 40)}/></message>`))).toBe('policy-violation');
  });

  test('duplicate attributes are caught among many', () => {
    const attrs = Array.from({ length: 40 }, (_, k) => `a${k}='${k}'`).join(' ');
    expect(cond(stanzas(`<message ${attrs} a3='x'/>`))).toBe('not-well-formed');
    expect(cond(stanzas(`<message ${attrs} a39='x'/>`))).toBe('not-well-formed');
    expect(stanzas(`<message ${attrs} a40='x'/>`).errors).toEqual([]);
  });

  test('attributes per element', () => {
    const attrs = (n: number) => Array.from({ length: n }, (_, k) => `a${k}='${k}'`).join(' ');
    expect(stanzas(`<message ${attrs(64)}/>`).errors).toEqual([]);
    expect(cond(stanzas(`<message ${attrs(65)}/>`))).toBe('policy-violation');
    expect(cond(feed([HEADER, `<message><x ${attrs(3)}/></message>`], { maxAttributes: 2 }))).toBe('policy-violation');
  });
});

describe('StreamParser: escaping round trip', () => {
  test('toString() re-parses to an equal element', () => {
    const el = x(
      'message',
      { xmlns: 'jabber:client', to: 'a&b@c/<d>', id: `"'quotes'"`, 'xml:lang': 'en' },
      x('body', null, `<tag> & "quotes" 'apos' ]]> é😀`),
      x('x', { xmlns: 'urn:x', attr: '&amp; &lt;' }, x('y', null, '&amp;'), 'tail'),
      x('empty'),
    );
    const r = stanzas(el.toString());
    expect(r.errors).toEqual([]);
    expect(r.els[0]).toEqual(el);
    expect(r.els[0]!.toString()).toBe(el.toString());
  });

  test('parsed stanzas round-trip through toString()', () => {
    const r = stanzas(
      "<message><foo:x xmlns:foo='urn:a' foo:y='1&amp;2'><foo:z>&lt;&gt;</foo:z><w xmlns=''/></foo:x>" +
        "<stream:q/><body xml:lang='de'>Grüße &#x1F600;</body></message>",
    );
    expect(r.errors).toEqual([]);
    const again = stanzas(r.els[0]!.toString());
    expect(again.errors).toEqual([]);
    expect(again.els[0]).toEqual(r.els[0]);
  });
});

describe('StreamParser: differential test against saxes', () => {
  /** saxes (a conformant, slow parser) with our restrictions added through its events; the tree built like ours. */
  function viaSaxes(doc: string): string | null {
    const p = new SaxesParser({ xmlns: true });
    const stack: Element[] = [];
    const uris: string[] = [];
    let root: Element | null = null;
    let failed = false;
    const fail = () => void (failed = true);
    p.on('error', fail);
    p.on('doctype', fail);
    p.on('comment', fail);
    p.on('processinginstruction', fail);
    p.on('opentag', (t: SaxesTagNS) => {
      const attrs: Record<string, string> = {};
      const as = t.attributes as Record<string, SaxesAttributeNS>;
      for (const k in as) if (as[k]!.prefix !== 'xmlns' && k !== 'xmlns') attrs[k] = as[k]!.value;
      const el = new Element(t.local, attrs, []);
      const d = stack.length;
      if (d === 0 ? t.uri !== '' : t.uri !== uris[d - 1]) attrs.xmlns = t.uri;
      if (d > 0) stack[d - 1]!.children.push(el);
      else root = el;
      stack.push(el);
      uris.push(t.uri);
    });
    const text = (t: string) => {
      const top = stack[stack.length - 1];
      if (top === undefined || t === '') return; // saxes reports an empty CDATA section; we have no empty strings
      const ch = top.children;
      if (typeof ch[ch.length - 1] === 'string') ch[ch.length - 1] += t;
      else ch.push(t);
    };
    p.on('text', text);
    p.on('cdata', text);
    p.on('closetag', () => {
      stack.pop();
      uris.pop();
    });
    try {
      p.write(doc);
      p.close();
    } catch {
      failed = true;
    }
    return failed || root === null ? null : canon(root);
  }

  /** Attribute order and kept xmlns:prefix declarations aside. */
  function canon(el: Element): string {
    const keys = Object.keys(el.attrs)
      .filter((k) => !k.startsWith('xmlns:'))
      .sort();
    return (
      '<' + el.name + keys.map((k) => ` ${k}=${JSON.stringify(el.attrs[k])}`).join('') + '>' +
      el.children.map((c) => (typeof c === 'string' ? JSON.stringify(c) : canon(c))).join('') + '</>'
    );
  }

  function viaUs(doc: string): string | null {
    try {
      return canon(parseXml(doc));
    } catch {
      return null;
    }
  }

  test('same verdict and same tree on thousands of mutated documents', () => {
    const bases = [
      "<?xml version='1.0'?><message xmlns='jabber:client' to='a@b' id='x&amp;y'><body>hi &lt;there&gt; &#233; é😀</body>" +
        "<x:y xmlns:x='urn:x' x:a='1'><z/></x:y><![CDATA[c]]></message>",
      "<a xmlns='urn:a' xml:lang='en'><b c=\"d\" e='f\tg'/>text\r\n<p:q xmlns:p='urn:p'>t</p:q><r xmlns=''/></a>",
    ];
    const alphabet = ['<', '>', '&', ';', '"', "'", '/', '=', ']', ' ', ':', 'x', '\u0001', '#', '!', '?', '-', '[', 'xmlns', 'xml:',
      '&#0;', '&#x41;', ']]>', '<![CDATA[', '\n', '\r', 'p:', '1', 'é', '😀', '\t', 'xmlns:p="urn:q"', " xmlns='urn:z'", '\ufffe', '·', '\u0300'];
    const r = rng(99);
    let accepted = 0;
    for (let k = 0; k < 6000; k++) {
      const cps = Array.from(bases[k % bases.length]!);
      for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
        const pos = Math.floor(r() * (cps.length + 1));
        const op = r();
        const ins = alphabet[Math.floor(r() * alphabet.length)]!;
        if (op < 0.33) cps.splice(pos, 1);
        else if (op < 0.66) cps.splice(pos, 0, ins);
        else cps.splice(pos, 1, ins);
      }
      const doc = cps.join('');
      // saxes trims namespace names; the Namespaces spec does not.
      if (/xmlns(:[^=]*)?\s*=\s*(['"])(\s[^'"]*|[^'"]*\s)\2/.test(doc)) continue;
      const ours = viaUs(doc);
      const theirs = viaSaxes(doc);
      expect([doc, ours]).toEqual([doc, theirs]);
      if (ours !== null) {
        accepted++;
        // Byte-chunked through the stream parser, it comes out the same.
        const body = doc.replace(/^<\?xml[^>]*>/, '');
        if (body.startsWith("<message xmlns='jabber:client'")) {
          const buf = Buffer.from(HEADER + body);
          const chunks: Buffer[] = [];
          for (let a = 0; a < buf.length; ) {
            const n = 1 + Math.floor(r() * 9);
            chunks.push(buf.subarray(a, a + n));
            a += n;
          }
          const res = feed(chunks);
          expect(res.errors).toEqual([]);
          expect(canon(res.els[0]!)).toBe(ours);
        }
      }
    }
    expect(accepted).toBeGreaterThan(500);
  });
});
