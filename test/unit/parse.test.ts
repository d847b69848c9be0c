import { x } from '../../src/xml/element';
import { StreamError } from '../../src/errors';
import { parseXml } from '../../src/xml/parse';

function condition(s: string): string | undefined {
  try {
    parseXml(s);
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e instanceof StreamError ? e.condition : 'Error: ' + (e as Error).message;
  }
  return undefined;
}

describe('parseXml', () => {
  test('parses one element; the root gets its namespace, children inherit', () => {
    expect(parseXml("<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus></query>")).toEqual(
      x('query', { xmlns: 'jabber:iq:private' }, x('exodus', { xmlns: 'exodus:prefs' }, x('defaultnick', null, 'Hamlet'))),
    );
  });

  test('a root without a namespace has no xmlns', () => {
    expect(parseXml('<a><b/></a>')).toEqual(x('a', null, x('b')));
  });

  test('prefixes resolve as in the stream parser', () => {
    expect(parseXml("<p:a xmlns:p='urn:p'><p:b/><c xmlns='urn:c'/></p:a>")).toEqual(x('a', { xmlns: 'urn:p' }, x('b'), x('c', { xmlns: 'urn:c' })));
  });

  test('XML declaration and surrounding whitespace are allowed', () => {
    expect(parseXml("<?xml version='1.0' encoding='UTF-8'?>\n<a>x</a>\n")).toEqual(x('a', null, 'x'));
    expect(parseXml('\uFEFF<a/>')).toEqual(x('a'));
  });

  test('entities and character references', () => {
    expect(parseXml("<a b='&lt;&#65;'>&amp;&#x1F600;</a>")).toEqual(x('a', { b: '<A' }, '&😀'));
  });

  test('round trip: toString() re-parses to an equal element', () => {
    const el = x(
      'message',
      { xmlns: 'jabber:client', from: 'a@b/c', id: `<"'&>` },
      x('body', null, `1 < 2 && 3 > 2 ]]> "é" 😀`),
      x('delay', { xmlns: 'urn:xmpp:delay', stamp: '2002-09-10T23:08:25Z' }),
      x('x', { xmlns: 'jabber:x:data', type: 'result' }, x('field', { var: 'a' }, x('value', null, 'v'))),
    );
    expect(parseXml(el.toString())).toEqual(el);
    expect(parseXml(parseXml(el.toString()).toString())).toEqual(el);
  });

  test('no size limit on stored XML', () => {
    const big = 'a'.repeat(2_000_000);
    expect(parseXml(`<a>${big}</a>`).text()).toBe(big);
  });

  test.each([
    ['empty', '', 'not-well-formed'],
    ['whitespace only', '  ', 'not-well-formed'],
    ['unclosed', '<a><b></b>', 'not-well-formed'],
    ['two roots', '<a/><b/>', 'not-well-formed'],
    ['trailing text', '<a/>x', 'not-well-formed'],
    ['leading text', 'x<a/>', 'not-well-formed'],
    ['mismatched', '<a></b>', 'not-well-formed'],
    ['DOCTYPE', '<!DOCTYPE a><a/>', 'restricted-xml'],
    ['comment', '<a><!-- x --></a>', 'restricted-xml'],
    ['trailing comment', '<a/><!-- x -->', 'not-well-formed'],
    ['PI', '<a><?pi x?></a>', 'restricted-xml'],
    ['undefined entity', '<a>&nbsp;</a>', 'restricted-xml'],
    ['bad char ref', '<a>&#0;</a>', 'not-well-formed'],
    ['unbound prefix', '<p:a/>', 'bad-namespace-prefix'],
    ['top-level CDATA', '<![CDATA[x]]>', 'not-well-formed'],
  ])('rejects %s', (_name, s, expected) => {
    expect(condition(s)).toBe(expected);
  });

  test('limits can be given', () => {
    expect(condition('<a><b><c/></b></a>')).toBeUndefined();
    expect(() => parseXml('<a><b><c/></b></a>', { maxDepth: 2 })).toThrow(StreamError);
  });
});

describe('escaping round trip of whitespace the parser would normalise', () => {
  it('keeps TAB, LF and CR in attributes and CR in text', () => {
    const el = x('a', { b: 'x\ty\nz\rw' }, 'line1\r\nline2');
    const back = parseXml(el.toString());
    expect(back.attrs.b).toBe('x\ty\nz\rw');
    expect(back.text()).toBe('line1\r\nline2');
  });
});
