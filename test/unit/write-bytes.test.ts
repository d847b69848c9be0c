import fc from 'fast-check';
import { Element, x } from '../../src/xml/element';
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

describe('writing an element as UTF-8 bytes', () => {
  it('gives the bytes of toString(), for any text and attribute values', () => {
    // Text with every character that is escaped, non-ASCII, astral and lone surrogates.
    const text = fc.string({ unit: fc.oneof(fc.constantFrom('&', '<', '>', '"', "'", '\t', '\n', '\r', 'é', '€', '😀', '\ud800', 'a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 40 });
    const name = fc.stringMatching(/^[a-z][a-z0-9:-]{0,10}$/);
    const tree: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
      el: fc.tuple(name, fc.dictionary(name, text, { maxKeys: 4 }), fc.array(fc.oneof(text, tie('el')), { maxLength: 4 }))
        .map(([n, attrs, children]) => new Element(n, attrs, children)),
    })).el;
    fc.assert(fc.property(tree, (el) => {
      expect(bytesOf(el).equals(Buffer.from(el.toString()))).toBe(true);
    }), { numRuns: 500 });
  });

  it('writes a parsed chat message as it reads back', () => {
    const el = parseXml(`<message xmlns="jabber:client" to="juliet@example.com" type="chat" id="m1"><body>Wherefore art thou &amp; &lt;Romeo&gt;? — ¿dónde? 😀</body></message>`);
    el.append(x('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'abc', by: 'juliet@example.com' }));
    const bytes = bytesOf(el);
    expect(bytes.toString()).toBe(el.toString());
    expect(parseXml(bytes.toString())).toEqual(el);
  });
});
