import { Jid, JidError, prepareDomainpart, prepareLocalpart, prepareResourcepart } from '../../src/jid';

function parts(s: string): [string, string, string] {
  const j = Jid.parse(s);
  return [j.local, j.domain, j.resource];
}

describe('RFC 7622 §3.5.1 examples of valid JIDs', () => {
  test.each<[string, string, [string, string, string]]>([
    ['juliet@example.com', 'juliet@example.com', ['juliet', 'example.com', '']],
    ['juliet@example.com/foo', 'juliet@example.com/foo', ['juliet', 'example.com', 'foo']],
    ['juliet@example.com/foo bar', 'juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar']],
    ['juliet@example.com/foo@bar', 'juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar']],
    ['foo\\20bar@example.com', 'foo\\20bar@example.com', ['foo\\20bar', 'example.com', '']],
    ['fussball@example.com', 'fussball@example.com', ['fussball', 'example.com', '']],
    ['fu\u00dfball@example.com', 'fu\u00dfball@example.com', ['fu\u00dfball', 'example.com', '']],
    ['\u03c0@example.com', '\u03c0@example.com', ['\u03c0', 'example.com', '']],
    ['\u03a3@example.com/foo', '\u03c3@example.com/foo', ['\u03c3', 'example.com', 'foo']],
    ['\u03c3@example.com/foo', '\u03c3@example.com/foo', ['\u03c3', 'example.com', 'foo']],
    ['\u03c2@example.com/foo', '\u03c2@example.com/foo', ['\u03c2', 'example.com', 'foo']],
    ['\u1fb2@example.com', '\u1fb2@example.com', ['\u1fb2', 'example.com', '']], // ᾲ
    ['king@example.com/\u265a', 'king@example.com/\u265a', ['king', 'example.com', '\u265a']],
    ['example.com', 'example.com', ['', 'example.com', '']],
    ['example.com/foobar', 'example.com/foobar', ['', 'example.com', 'foobar']],
    ['a.example.com/b@example.net', 'a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net']],
  ])('%j', (input, str, expected) => {
    expect(parts(input)).toEqual(expected);
    expect(Jid.parse(input).toString()).toBe(str);
  });

  test('ß and ss stay distinct; Σ and σ are the same localpart', () => {
    expect(Jid.parse('fussball@example.com').equals(Jid.parse('fu\u00dfball@example.com'))).toBe(false);
    expect(Jid.parse('\u03a3@example.com').equals(Jid.parse('\u03c3@example.com'))).toBe(true);
  });
});

describe('RFC 7622 §3.5.2 examples of invalid JIDs', () => {
  test.each<[string, string]>([
    ['"juliet"@example.com', 'quotation marks in the localpart'],
    ['foo bar@example.com', 'space in the localpart'],
    ['juliet@example.com/', 'empty resourcepart'],
    ['@example.com/', 'empty localpart and resourcepart'],
    ['@example.com', 'empty localpart'],
    ['henry\u2163@example.com', 'ROMAN NUMERAL FOUR in the localpart'],
    ['henry\u2163@example.com/', 'ROMAN NUMERAL FOUR in the localpart, empty resourcepart'],
    ['\u265a@example.com', 'symbol in the localpart'],
    ['juliet@', 'empty domainpart'],
    ['/foobar', 'empty domainpart'],
    ['', 'empty JID'],
  ])('%j (%s)', (input) => {
    expect(() => Jid.parse(input)).toThrow(JidError);
    expect(Jid.tryParse(input)).toBeUndefined();
  });
});

describe('localpart', () => {
  test.each<[string, string]>([
    ['Juliet', 'juliet'],
    ['JULIET', 'juliet'],
    ['\uff2a\uff35\uff2c\uff29\uff25\uff34', 'juliet'], // fullwidth
    ['\u00c6lfred', '\u00e6lfred'],
    ['\u212b', '\u00e5'], // ANGSTROM SIGN
    ['e\u0301', '\u00e9'], // NFC
    ['\u0410\u043d\u043d\u0430', '\u0430\u043d\u043d\u0430'], // Анна
    ['\u05e9\u05dc\u05d5\u05dd', '\u05e9\u05dc\u05d5\u05dd'],
    ['l\u00b7l', 'l\u00b7l'],
    ['a.b_c-d+e!#$%()*,;=?[]^`{|}~', 'a.b_c-d+e!#$%()*,;=?[]^`{|}~'],
  ])('%j → %j', (input, output) => {
    expect(prepareLocalpart(input)).toBe(output);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['a"b', '"'],
    ['a&b', '&'],
    ["a'b", "'"],
    ['a/b', '/'],
    ['a:b', ':'],
    ['a<b', '<'],
    ['a>b', '>'],
    ['a@b', '@'],
    ['a\uff20b', 'FULLWIDTH COMMERCIAL AT maps to @'],
    ['a\uff02b', 'FULLWIDTH QUOTATION MARK maps to "'],
    ['a b', 'space'],
    ['a\u00a0b', 'no-break space'],
    ['a\tb', 'tab'],
    ['a\u0000b', 'NUL'],
    ['a\u007fb', 'DEL'],
    ['\u05e9a', 'Bidi Rule'],
    ['a\u200bb', 'zero width space'],
    ['a\u00b7b', 'MIDDLE DOT out of context'],
    ['\ufb00', 'ligature (HasCompat)'],
    ['\u00b2', 'superscript (HasCompat)'],
  ])('rejects %j (%s)', (input) => {
    expect(() => prepareLocalpart(input)).toThrow(JidError);
  });

  test('1023 bytes are fine, 1024 are not (counted in UTF-8)', () => {
    expect(prepareLocalpart('a'.repeat(1023))).toBe('a'.repeat(1023));
    expect(() => prepareLocalpart('a'.repeat(1024))).toThrow(JidError);
    const e511 = '\u00e9'.repeat(511); // 1022 bytes
    expect(prepareLocalpart(e511 + 'a')).toBe(e511 + 'a');
    expect(() => prepareLocalpart(e511 + 'ab')).toThrow(JidError);
    expect(() => prepareLocalpart('\u00e9'.repeat(512))).toThrow(JidError);
    // the limit applies after mapping: 1023 fullwidth letters map to 1023 ASCII bytes
    expect(prepareLocalpart('\uff41'.repeat(1023))).toBe('a'.repeat(1023));
    expect(Jid.parse('A'.repeat(1023) + '@example.com').local).toBe('a'.repeat(1023));
    expect(() => Jid.parse('a'.repeat(1024) + '@example.com')).toThrow(JidError);
    // decomposed input longer than 1023 code units may still fit once composed
    expect(prepareLocalpart('e\u0301'.repeat(511))).toBe('\u00e9'.repeat(511));
  });

  test('huge inputs are refused before any Unicode work', () => {
    expect(() => prepareLocalpart('\u00e9'.repeat(100_000))).toThrow(/longer than 1023 bytes/);
    expect(() => prepareResourcepart('\u00e9'.repeat(100_000))).toThrow(/longer than 1023 bytes/);
    expect(() => prepareDomainpart('\u00e9'.repeat(100_000))).toThrow(/longer than 1023 bytes/);
  });
});

describe('resourcepart', () => {
  test.each<[string, string]>([
    ['Foo', 'Foo'], // case is kept
    ['foo bar', 'foo bar'],
    [' padded ', ' padded '],
    ['foo@bar', 'foo@bar'],
    ['a/b/c', 'a/b/c'],
    ['\u265a', '\u265a'],
    ['Richard \u2163', 'Richard \u2163'],
    ['foo\u00a0bar', 'foo bar'], // non-ASCII space → U+0020
    ['foo\u3000bar', 'foo bar'],
    ['\uff21', '\uff21'], // no width mapping
    ['e\u0301', '\u00e9'], // NFC
    ['\u05e9a', '\u05e9a'], // no Bidi Rule
    ['\u{1f600}', '\u{1f600}'],
  ])('%j → %j', (input, output) => {
    expect(prepareResourcepart(input)).toBe(output);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['a\tb', 'tab'],
    ['a\nb', 'newline'],
    ['a\u0000b', 'NUL'],
    ['a\u0085b', 'C1 control'],
    ['a\u00adb', 'soft hyphen'],
    ['a\u2029b', 'paragraph separator'],
    ['\ue000', 'private use'],
    ['\ud800', 'lone surrogate'],
    ['\u0378', 'unassigned'],
  ])('rejects %j (%s)', (input) => {
    expect(() => prepareResourcepart(input)).toThrow(JidError);
  });

  test('1023 bytes are fine, 1024 are not', () => {
    expect(prepareResourcepart('r'.repeat(1023))).toBe('r'.repeat(1023));
    expect(() => prepareResourcepart('r'.repeat(1024))).toThrow(JidError);
    expect(prepareResourcepart('\u265a'.repeat(341))).toBe('\u265a'.repeat(341)); // 1023 bytes
    expect(() => prepareResourcepart('\u265a'.repeat(341) + 'x')).toThrow(JidError);
    expect(Jid.parse('juliet@example.com/' + 'r'.repeat(1023)).resource).toBe('r'.repeat(1023));
    expect(() => Jid.parse('juliet@example.com/' + 'r'.repeat(1024))).toThrow(JidError);
  });

  test('everything after the first slash is the resourcepart', () => {
    expect(parts('juliet@example.com/a/b@c')).toEqual(['juliet', 'example.com', 'a/b@c']);
    expect(parts('example.com/@')).toEqual(['', 'example.com', '@']);
  });
});

describe('domainpart', () => {
  test.each<[string, string]>([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'], // one trailing dot stripped
    ['\u00c6X.example', '\u00e6x.example'], // IDN lower-cased
    ['xn--mnchen-3ya.de', 'm\u00fcnchen.de'],
    ['example\u3002com', 'example.com'],
    ['192.0.2.1', '192.0.2.1'],
    ['[2001:db8::1]', '[2001:db8::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[::1]', '[::1]'],
    ['localhost', 'localhost'],
  ])('%j → %j', (input, output) => {
    expect(prepareDomainpart(input)).toBe(output);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['.', 'empty after the trailing dot'],
    ['example.com..', 'two trailing dots'],
    ['a..example', 'empty label'],
    ['-a.example', 'leading hyphen'],
    ['a-.example', 'trailing hyphen'],
    ['a_b.example', 'underscore'],
    ['exa mple.com', 'space'],
    ['a'.repeat(64) + '.example', '64-octet label'],
    ['xn--zz.example', 'invalid A-label'],
    ['\u2603.example', 'symbol'],
    ['[::1', 'unterminated IPv6 literal'],
    ['[not-ipv6]', 'bad IPv6 literal'],
  ])('rejects %j (%s)', (input) => {
    expect(() => prepareDomainpart(input)).toThrow(JidError);
  });

  test('JIDs with IP literals and trailing dots', () => {
    expect(parts('juliet@[2001:db8::1]/balcony')).toEqual(['juliet', '[2001:db8::1]', 'balcony']);
    expect(parts('juliet@192.0.2.1')).toEqual(['juliet', '192.0.2.1', '']);
    expect(Jid.parse('juliet@example.com./balcony').toString()).toBe('juliet@example.com/balcony');
    expect(Jid.parse('example.com.').equals(Jid.parse('example.com'))).toBe(true);
    expect(parts('juliet@M\u00fcnchen.DE/x')).toEqual(['juliet', 'm\u00fcnchen.de', 'x']);
    expect(Jid.parse('juliet@xn--mnchen-3ya.de').equals(Jid.parse('juliet@m\u00fcnchen.de'))).toBe(true);
  });

  test('1023 bytes are fine, 1024 are not', () => {
    const base = Array(15).fill('d'.repeat(63)).join('.'); // 959 bytes
    const d1023 = base + '.' + 'e'.repeat(63);
    expect(Jid.parse('a@' + d1023).domain).toBe(d1023);
    expect(() => Jid.parse('a@' + base + '.' + 'e'.repeat(62) + '.f')).toThrow(JidError);
  });
});

describe('Jid API', () => {
  test('bare, full and domain JIDs', () => {
    const full = Jid.parse('Juliet@Example.com/Balcony');
    expect(full.local).toBe('juliet');
    expect(full.domain).toBe('example.com');
    expect(full.resource).toBe('Balcony');
    expect(full.isBare).toBe(false);
    expect(full.isDomain).toBe(false);
    expect(full.bareString).toBe('juliet@example.com');
    expect(full.toString()).toBe('juliet@example.com/Balcony');
    expect(String(full)).toBe('juliet@example.com/Balcony');

    const bare = full.bare();
    expect(bare.isBare).toBe(true);
    expect(bare.toString()).toBe('juliet@example.com');
    expect(bare.bare()).toBe(bare);
    expect(bare.withResource('Orchard').toString()).toBe('juliet@example.com/Orchard');

    const domain = Jid.parse('example.com');
    expect(domain.isDomain).toBe(true);
    expect(domain.isBare).toBe(true);
    expect(domain.bareString).toBe('example.com');
    expect(Jid.parse('example.com/res').isDomain).toBe(false);
  });

  test('equality follows normalisation', () => {
    expect(Jid.parse('JULIET@EXAMPLE.COM/r').equals(Jid.parse('juliet@example.com/r'))).toBe(true);
    expect(Jid.parse('juliet@example.com/R').equals(Jid.parse('juliet@example.com/r'))).toBe(false);
    expect(Jid.parse('juliet@example.com/a\u00a0b').equals(Jid.parse('juliet@example.com/a b'))).toBe(true);
    expect(Jid.parse('\uff4a\uff55\uff4c\uff49\uff45\uff54@example.com').equals(Jid.parse('juliet@example.com'))).toBe(
      true,
    );
    expect(Jid.parse('juliet@example.com').equals(undefined)).toBe(false);
    expect(new Jid('juliet', 'example.com').equals(Jid.parse('juliet@example.com'))).toBe(true);
  });

  test('tryParse', () => {
    expect(Jid.tryParse(undefined)).toBeUndefined();
    expect(Jid.tryParse('juliet@')).toBeUndefined();
    expect(Jid.tryParse('juliet@example.com')?.toString()).toBe('juliet@example.com');
  });

  test('parse errors are JidErrors naming the part', () => {
    expect(() => Jid.parse('foo bar@example.com')).toThrow(/localpart/);
    expect(() => Jid.parse('juliet@example.com/a\u0000')).toThrow(/resourcepart/);
    expect(() => Jid.parse('juliet@exa mple.com')).toThrow(/domainpart/);
    try {
      Jid.parse('juliet@');
    } catch (e) {
      expect(e).toBeInstanceOf(JidError);
      expect((e as Error).name).toBe('JidError');
    }
  });

  test('parsing is fast for plain ASCII JIDs', () => {
    const inputs = ['juliet@example.com/balcony', 'romeo@montague.lit', 'example.com', 'Juliet@Example.com/Foo Bar'];
    const start = process.hrtime.bigint();
    for (let i = 0; i < 100_000; i++) Jid.parse(inputs[i % inputs.length]!);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(ms).toBeLessThan(2000); // about 15 ms on a laptop: only a gross regression fails this
  });
});
