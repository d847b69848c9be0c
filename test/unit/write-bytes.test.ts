import fc from 'fast-check';
import { Element, escapeAttr, escapeText, x } from '../../src/xml/element';
import { parseXml } from '../../src/xml/parse';
import { elementBytesBound, writeElement } from '../../src/xml/write-bytes';

function bytesOf(el: Element): Buffer {
  const bound = elementBytesBound(el);
  const b = Buffer.alloc(bound + 8, 0xaa);
  const end = writeElement(b, 4, el);
  expect(end - 4).toBeLessThanOrEqual(bound);
  expect(b.subarray(end).every((v) => v === 0xaa)).toBe(true); // nothing written past the end
  return b.subarray(4, end);
}

/** XML by plain concatenation: what the byte writer must equal. */
function reference(el: Element): string {
  let s = '<' + el.name;
  for (const [k, v] of Object.entries(el.attrs)) s += ' ' + k + '="' + escapeAttr(v) + '"';
  if (el.children.length === 0) return s + '/>';
  s += '>';
  for (const c of el.children) s += typeof c === 'string' ? escapeText(c) : reference(c);
  return s + '</' + el.name + '>';
}

describe('writing an element as UTF-8 bytes', () => {
  it('gives the UTF-8 of the concatenated XML, for any text and attribute values; toString reads it back', () => {
    // Text with every character that is escaped, non-ASCII, astral and lone surrogates.
    const special = fc.oneof(fc.constantFrom('&', '<', '>', '"', "'", '\t', '\n', '\r', 'é', '€', '😀', '\ud800', 'a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    // Long, mostly plain ASCII strings too, which take a path of their own from 40 characters on.
    const plain = fc.oneof({ arbitrary: fc.constantFrom('a', 'Z', '0', ' ', '@', '/'), weight: 30 }, { arbitrary: special, weight: 1 });
    const text = fc.oneof(fc.string({ unit: special, maxLength: 40 }), fc.string({ unit: plain, minLength: 30, maxLength: 80 }));
    // Names too may be non-ASCII (XML allows it): they take up to 3 bytes per unit.
    const name = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9:-]{0,10}$/), fc.constantFrom('é', 'ünïcödé', '名前', 'a€'));
    const tree: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
      el: fc.tuple(name, fc.dictionary(name, text, { maxKeys: 4 }), fc.array(fc.oneof(text, tie('el')), { maxLength: 4 }))
        .map(([n, attrs, children]) => new Element(n, attrs, children)),
    })).el;
    fc.assert(fc.property(tree, (el) => {
      const expected = Buffer.from(reference(el));
      expect(bytesOf(el).equals(expected)).toBe(true);
      expect(el.toString()).toBe(expected.toString()); // lone surrogates become U+FFFD, as on the wire

    }), { numRuns: 500 });
  });

  it('writes a parsed chat message as it reads back', () => {
    const el = parseXml(`<message xmlns="jabber:client" to="juliet@example.com" type="chat" id="m1"><body>Wherefore art thou &amp; &lt;Romeo&gt;? — ¿dónde? 😀</body></message>`);
    el.append(x('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'abc', by: 'juliet@example.com' }));
    const bytes = bytesOf(el);
    expect(bytes.toString()).toBe(reference(el));
    expect(el.toString()).toBe(reference(el));
    expect(parseXml(el.toString())).toEqual(el);
  });

  it('serialises stanzas bigger than the reused buffer', () => {
    const big = x('message', { to: 'a@b' }, x('body', null, 'é'.repeat(400_000)));
    expect(big.toString()).toBe(reference(big));
    expect(x('iq', { type: 'get' }).toString()).toBe('<iq type="get"/>');
  });
});
