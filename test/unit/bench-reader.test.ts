import { StanzaReader, attr, attrRange, nameIs, tagName, unescapeXml } from '../../bench/lib/reader';

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='abc' version='1.0'>";

interface Got {
  starts: string[];
  stanzas: string[];
  ends: number;
}

function reader(): { r: StanzaReader; got: Got } {
  const got: Got = { starts: [], stanzas: [], ends: 0 };
  const r = new StanzaReader({
    streamStart: (buf, s, e) => got.starts.push(buf.toString('utf8', s, e)),
    stanza: (buf, s, e) => got.stanzas.push(buf.toString('utf8', s, e)),
    streamEnd: () => got.ends++,
  });
  return { r, got };
}

/** Feeds `input` split at the given byte offsets. */
function feed(input: string, cuts: number[]): Got {
  const { r, got } = reader();
  const bytes = Buffer.from(input);
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    r.push(Buffer.from(bytes.subarray(prev, c))); // a copy: the reader must not depend on one buffer
    prev = c;
  }
  return got;
}

const STANZAS = [
  '<stream:features><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN</mechanism></mechanisms></stream:features>',
  "<message to='u1@localhost' id='m1' type='chat'><body>x &gt; y &amp; a/b</body></message>",
  "<presence from='a@b/c'/>",
  "<iq type='result' id='q&apos;1' note='a > b / c'><query xmlns='jabber:iq:roster'><item jid='x@y' name=\"it's\"/></query></iq>",
  '<message id="m2"><body><![CDATA[<not><a tag>]]></body></message>',
  "<message id='m3'><body>日本語 😀 café</body><x><y><z/></y></x></message>",
];

describe('StanzaReader', () => {
  const input = `${HEADER}${STANZAS.join(' \n')} </stream:stream>`;

  it('finds the header, each top-level stanza and the footer in one chunk', () => {
    const got = feed(input, []);
    expect(got.starts).toHaveLength(1);
    expect(got.starts[0]).toMatch(/^<stream:stream /);
    expect(got.stanzas).toEqual(STANZAS);
    expect(got.ends).toBe(1);
  });

  it('gives the same result for every split point (tokens, attribute values, UTF-8 sequences)', () => {
    const len = Buffer.byteLength(input);
    for (let cut = 1; cut < len; cut++) {
      const got = feed(input, [cut]);
      expect(got.stanzas).toEqual(STANZAS);
      expect(got.ends).toBe(1);
    }
  });

  it('handles byte-by-byte input', () => {
    const len = Buffer.byteLength(input);
    const got = feed(input, Array.from({ length: len - 1 }, (_, i) => i + 1));
    expect(got.stanzas).toEqual(STANZAS);
    expect(got.starts).toHaveLength(1);
  });

  it('handles random splits into many chunks', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const len = Buffer.byteLength(input);
    for (let trial = 0; trial < 200; trial++) {
      const cuts = new Set<number>();
      const n = 1 + Math.floor(rand() * 20);
      for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(rand() * (len - 1)));
      const got = feed(input, [...cuts].sort((a, b) => a - b));
      expect(got.stanzas).toEqual(STANZAS);
    }
  });

  it('recognises a stream restart (a new header after SASL success)', () => {
    const s = `${HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>${HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`;
    const got = feed(s, [HEADER.length + 10]);
    expect(got.starts).toHaveLength(2);
    expect(got.stanzas).toEqual([
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
      "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
    ]);
  });

  it('accepts a header without prefix and ignores comments and processing instructions between stanzas', () => {
    const s = "<stream xmlns='http://etherx.jabber.org/streams'><!-- hello > there --><?pi x?><a/><b>t</b></stream>";
    const got = feed(s, [20, 40]);
    expect(got.starts).toHaveLength(1);
    expect(got.stanzas).toEqual(['<a/>', '<b>t</b>']);
    expect(got.ends).toBe(1);
  });

  it('does not take a stanza named like the stream for a header', () => {
    const got = feed(`${HEADER}<message><stream:stream/></message><streamx/>`, []);
    expect(got.starts).toHaveLength(1);
    expect(got.stanzas).toEqual(['<message><stream:stream/></message>', '<streamx/>']);
  });

  it('holds back only the unfinished stanza', () => {
    const { r, got } = reader();
    r.push(Buffer.from(`${HEADER}<message id='1'><body>hel`));
    expect(got.stanzas).toHaveLength(0);
    expect(r.pending).toBe(Buffer.byteLength("<message id='1'><body>hel"));
    r.push(Buffer.from('lo</body></message><presence/>'));
    expect(got.stanzas).toEqual(["<message id='1'><body>hello</body></message>", '<presence/>']);
    expect(r.pending).toBe(0);
  });
});

describe('attribute helpers', () => {
  const buf = Buffer.from(`xx<message  to = "u1@localhost" id='a&amp;b' type='chat' data-x='1>2'><body>to='no'</body></message>`);
  const start = 2;

  it('reads the element name', () => {
    expect(tagName(buf, start)).toBe('message');
    expect(nameIs(buf, start, 'message')).toBe(true);
    expect(nameIs(buf, start, 'mess')).toBe(false);
    expect(nameIs(Buffer.from('<iq/>'), 0, 'iq')).toBe(true);
    expect(nameIs(Buffer.from('<iqx/>'), 0, 'iq')).toBe(false);
  });

  it('reads attribute values from the start tag only, unescaped', () => {
    expect(attr(buf, start, 'to')).toBe('u1@localhost');
    expect(attr(buf, start, 'id')).toBe('a&b');
    expect(attr(buf, start, 'type')).toBe('chat');
    expect(attr(buf, start, 'data-x')).toBe('1>2');
    expect(attr(buf, start, 'from')).toBeUndefined();
    expect(attr(buf, start, 't')).toBeUndefined();
    const r = attrRange(buf, start, 'type')!;
    expect(buf.toString('utf8', r[0], r[1])).toBe('chat');
  });

  it('unescapes the predefined entities and character references', () => {
    expect(unescapeXml('a &lt;b&gt; &quot;c&quot; &apos;d&apos; &amp;amp; &#65;&#x42;')).toBe('a <b> "c" \'d\' &amp; AB');
    expect(unescapeXml('plain')).toBe('plain');
  });
});
