import {
  PrecisError,
  bidiClass,
  checkStringClass,
  derivedProperty,
  enforceOpaqueString,
  enforceUsernameCaseMapped,
  enforceUsernameCasePreserved,
  joiningType,
  preparePassword,
  satisfiesBidiRule,
  widthMap,
} from '../../src/precis/index';
import { enforceDomainName } from '../../src/precis/idna';
import { TABLES_UNICODE_VERSION } from '../../src/precis/tables';

/** UTF-8 hex, as the PRECIS test vectors (draft-whited-precis-test-vectors) write strings. */
function hex(h: string): string {
  return Buffer.from(h, 'hex').toString('utf8');
}

describe('tables', () => {
  // Tables from a newer Unicode than Node's are harmless (Node's \p{Cn} rejects the extra code
  // points); an older one would misclassify new characters: rerun src/precis/gen-tables.py.
  test('are not older than the Unicode version of this Node.js', () => {
    const version = (v: string) => v.split('.').map(Number).reduce((acc, n, i) => acc + n * 1000 ** (2 - i), 0);
    expect(version(TABLES_UNICODE_VERSION)).toBeGreaterThanOrEqual(version(process.versions.unicode ?? '0'));
  });
});

describe('derived property (RFC 8264 §8)', () => {
  test.each<[number, string]>([
    [0x0061, 'PVALID'], // a
    [0x0041, 'PVALID'], // A: LetterDigits (case is a profile matter)
    [0x0021, 'PVALID'], // ASCII7
    [0x007e, 'PVALID'],
    [0x00df, 'PVALID'], // ß: exception
    [0x03c2, 'PVALID'], // ς: exception
    [0x3007, 'PVALID'], // 〇: exception
    [0x00e9, 'PVALID'],
    [0x03c0, 'PVALID'], // π
    [0x0301, 'PVALID'], // combining acute (Mn)
    [0x0020, 'ID_DIS'], // space
    [0x00a0, 'ID_DIS'], // NO-BREAK SPACE: HasCompat
    [0x2163, 'ID_DIS'], // ROMAN NUMERAL FOUR: HasCompat
    [0xfb00, 'ID_DIS'], // ff ligature: HasCompat
    [0xff21, 'ID_DIS'], // FULLWIDTH A: HasCompat
    [0x265a, 'ID_DIS'], // ♚ (So)
    [0x2603, 'ID_DIS'], // ☃ (So)
    [0x20ac, 'ID_DIS'], // € (Sc)
    [0x01c5, 'ID_DIS'], // Dž (Lt, HasCompat)
    [0x16ee, 'ID_DIS'], // RUNIC ARLAUG SYMBOL (Nl)
    [0x0488, 'ID_DIS'], // COMBINING CYRILLIC HUNDRED THOUSANDS SIGN (Me)
    [0x200c, 'CONTEXTJ'],
    [0x200d, 'CONTEXTJ'],
    [0x00b7, 'CONTEXTO'],
    [0x0375, 'CONTEXTO'],
    [0x05f3, 'CONTEXTO'],
    [0x05f4, 'CONTEXTO'],
    [0x30fb, 'CONTEXTO'],
    [0x0663, 'CONTEXTO'],
    [0x06f3, 'CONTEXTO'],
    [0x0000, 'DISALLOWED'], // controls
    [0x0009, 'DISALLOWED'],
    [0x007f, 'DISALLOWED'],
    [0x0085, 'DISALLOWED'],
    [0x00ad, 'DISALLOWED'], // SOFT HYPHEN: Default_Ignorable_Code_Point
    [0x200b, 'DISALLOWED'], // ZERO WIDTH SPACE: Default_Ignorable_Code_Point
    [0xfe0f, 'DISALLOWED'], // VARIATION SELECTOR-16: Default_Ignorable_Code_Point
    [0xfdd0, 'DISALLOWED'], // noncharacter
    [0xffff, 'DISALLOWED'], // noncharacter
    [0x1100, 'DISALLOWED'], // HANGUL CHOSEONG KIYEOK: OldHangulJamo
    [0x0640, 'DISALLOWED'], // ARABIC TATWEEL: exception
    [0x07fa, 'DISALLOWED'], // NKO LAJANYALAN: exception
    [0x302e, 'DISALLOWED'],
    [0x303b, 'DISALLOWED'],
    [0x2028, 'DISALLOWED'], // LINE SEPARATOR (Zl)
    [0x202e, 'DISALLOWED'], // RIGHT-TO-LEFT OVERRIDE (Cf)
    [0xe000, 'DISALLOWED'], // private use
    [0xd800, 'DISALLOWED'], // lone surrogate
    [0x0378, 'UNASSIGNED'],
    [0x10fffd, 'DISALLOWED'], // plane 16 private use
    [0xe0080, 'UNASSIGNED'],
  ])('code point %i is %s', (cp, expected) => {
    expect(derivedProperty(cp)).toBe(expected);
  });
});

describe('bidi class and joining type lookups', () => {
  test.each<[number, string]>([
    [0x61, 'L'],
    [0x05d0, 'R'], // א
    [0x0627, 'AL'], // ا
    [0x0661, 'AN'], // ١
    [0x06f1, 'EN'], // ۱ extended Arabic-Indic digits are EN
    [0x31, 'EN'],
    [0x2b, 'ES'],
    [0x2c, 'CS'],
    [0x24, 'ET'],
    [0x21, 'ON'],
    [0x00ad, 'BN'],
    [0x0300, 'NSM'],
    [0x0cbf, 'L'], // a mark whose class is L
    [0x20, 'other'], // WS
    [0x202e, 'other'], // RLO
    [0x4e2d, 'L'], // 中
  ])('Bidi_Class of code point %i is %s', (cp, expected) => {
    expect(bidiClass(cp)).toBe(expected);
  });

  test.each<[number, string]>([
    [0x062c, 'D'], // ج
    [0x0627, 'R'], // ا
    [0xa872, 'L'], // PHAGS-PA SUPERFIXED LETTER RA
    [0x0610, 'T'], // ARABIC SIGN SALLALLAHOU ALAYHE WASSALLAM (Mn)
    [0x0061, 'U'],
    [0x200d, 'U'], // C reads as U
    [0x0600, 'U'], // Cf but not transparent
  ])('Joining_Type of code point %i is %s', (cp, expected) => {
    expect(joiningType(cp)).toBe(expected);
  });
});

describe('UsernameCaseMapped (RFC 8265 §3.3)', () => {
  test.each<[string, string]>([
    ['juliet@example.com', 'juliet@example.com'], // '@' is fine in the IdentifierClass
    ['fussball', 'fussball'],
    ['fu\u00dfball', 'fu\u00dfball'], // ß is kept: toLowerCase, not case folding
    ['\u03c0', '\u03c0'], // π
    ['\u03a3', '\u03c3'], // Σ → σ
    ['\u03c3', '\u03c3'],
    ['\u03c2', '\u03c2'], // final sigma kept
    ['I', 'i'],
    ['\u03b0', '\u03b0'], // ΰ
    ['~', '~'],
    ['a', 'a'],
    ['!', '!'],
    ['Foo', 'foo'],
    ['\u212b', '\u00e5'], // ANGSTROM SIGN → å
    ['A\u030a', '\u00e5'], // A + combining ring → å
    ['\u00c5', '\u00e5'],
    ['\u00e7', '\u00e7'], // ç
    ['c\u0327', '\u00e7'],
    ['\u0158', '\u0159'], // Ř → ř
    ['R\u030c', '\u0159'],
    ['\u1e61', '\u1e61'], // ṡ
    ['\u0410', '\u0430'], // Cyrillic А → а
    ['\uff21\uff22', 'ab'], // fullwidth ＡＢ → ab
    ['\uff4a\uff55\uff4c\uff49\uff45\uff54', 'juliet'],
    ['\u0627\u0644\u0639\u0631\u0628\u064a\u0629', '\u0627\u0644\u0639\u0631\u0628\u064a\u0629'], // RTL only
    ['\u05e9\u05dc\u05d5\u05dd1', '\u05e9\u05dc\u05d5\u05dd1'], // RTL ending in EN
  ])('%j → %j', (input, output) => {
    expect(enforceUsernameCaseMapped(input)).toBe(output);
  });

  test('draft-whited-precis-test-vectors: normalisation', () => {
    expect(enforceUsernameCaseMapped(hex('65cc81cc9f'))).toBe(hex('c3a9cc9f'));
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['foo bar', 'space'],
    [' ', 'space'],
    ['  ', 'spaces'],
    ['\u265a', '♚ (symbol)'],
    ['\u00b2', 'superscript two (HasCompat)'],
    ['\t', 'tab'],
    ['\n', 'newline'],
    ['\u26d6', 'symbol'],
    ['\u26ff', 'symbol'],
    ['\ufb00', 'ligature ff'],
    ['\u1680', 'OGHAM SPACE MARK'],
    ['\u01c5', 'titlecase Dž'],
    ['\u16ee', 'runic symbol (Nl)'],
    ['\u0488', 'enclosing mark (Me)'],
    ['\u03d2', 'GREEK UPSILON WITH HOOK SYMBOL (HasCompat)'],
    ['\u03d4', 'ϔ (HasCompat after NFC)'],
    ['\u03d2\u0308', 'ϒ + diaeresis composes to ϔ'],
    ['henry\u2163', 'roman numeral'],
    ['\u05e9c', 'Bidi Rule: RTL then L'],
    ['a\u05e9', 'Bidi Rule: L then RTL'],
    ['\u0661\u0662', 'Bidi Rule: starts with AN'],
    ['\u05d0\u0661\u06f1', 'Bidi Rule: AN and EN together'],
    ['a\u200bb', 'zero width space'],
    ['a\u00adb', 'soft hyphen'],
    ['\ud800', 'lone surrogate'],
    ['\ue000', 'private use'],
    ['\u0378', 'unassigned'],
  ])('rejects %j (%s)', (input) => {
    expect(() => enforceUsernameCaseMapped(input)).toThrow(PrecisError);
  });

  test('errors name the code point', () => {
    expect(() => enforceUsernameCaseMapped('foo bar')).toThrow(/U\+0020/);
    const err = (() => {
      try {
        enforceUsernameCaseMapped('a\u0007');
      } catch (e) {
        return e as PrecisError;
      }
      return undefined;
    })();
    expect(err?.codePoint).toBe(7);
  });
});

describe('UsernameCasePreserved (RFC 8265 §3.4)', () => {
  test.each<[string, string]>([
    ['ABC', 'ABC'],
    ['\uff21\uff22', 'AB'],
    ['\u212b', '\u00c5'],
  ])('%j → %j', (input, output) => {
    expect(enforceUsernameCasePreserved(input)).toBe(output);
  });

  test.each(['\u05e9c', '\ufb00', '\u1e9b'])('rejects %j', (input) => {
    expect(() => enforceUsernameCasePreserved(input)).toThrow(PrecisError);
  });
});

describe('OpaqueString (RFC 8265 §4.2)', () => {
  test.each<[string, string]>([
    ['  Swan  of   Avon   ', '  Swan  of   Avon   '], // spaces are kept as they are
    [' ', ' '],
    ['  ', '  '],
    [
      'a\u00a0a\u1680a\u2000a\u2001a\u2002a\u2003a\u2004a\u2005a\u2006a\u2007a\u2008a\u2009a\u200aa\u202fa\u205fa\u3000a',
      'a a a a a a a a a a a a a a a a a',
    ],
    ['Foo', 'Foo'],
    ['foo', 'foo'],
    ['Foo Bar', 'Foo Bar'],
    ['foo bar', 'foo bar'],
    ['\u03c3', '\u03c3'],
    ['Richard \u2163', 'Richard \u2163'], // not mapped: NFC only
    ['\u212b', '\u00c5'], // ANGSTROM SIGN → Å (canonical)
    ['Jack of \u2666s', 'Jack of \u2666s'],
    ['\u05e9a', '\u05e9a'], // no Bidi Rule in OpaqueString
    ['\uff21\uff22', '\uff21\uff22'], // no width mapping in OpaqueString
    ['e\u0301', '\u00e9'],
    ['\u{1f511}', '\u{1f511}'], // 🔑
    ['\u00aa', '\u00aa'], // ª: SASLprep's NFKC would have made it 'a'
    ['\u2168', '\u2168'], // Ⅸ: SASLprep would have made it 'IX'
    ['\u0627\u0031', '\u0627\u0031'], // SASLprep's bidi check would have rejected it
  ])('%j → %j', (input, output) => {
    expect(enforceOpaqueString(input)).toBe(output);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['my cat is a \tby', 'tab'],
    ['a\u0000b', 'NUL'],
    ['a\u007fb', 'DEL'],
    ['a\u0085b', 'C1 control'],
    ['I\u00adX', 'soft hyphen (SASLprep mapped it to nothing)'],
    ['a\u2028b', 'line separator'],
    ['a\ufeffb', 'BOM / zero width no-break space'],
    ['\ud83d', 'lone surrogate'],
    ['\ue000', 'private use'],
    ['\u0378', 'unassigned'],
    ['a\u200db', 'ZWJ without virama'],
  ])('rejects %j (%s)', (input) => {
    expect(() => enforceOpaqueString(input)).toThrow(PrecisError);
  });
});

describe('preparePassword', () => {
  test('ASCII passwords are unchanged', () => {
    expect(preparePassword('pencil')).toBe('pencil'); // RFC 5802 example
    expect(preparePassword('Pass word!')).toBe('Pass word!');
    expect(preparePassword('USER')).toBe('USER');
  });

  test('maps non-ASCII spaces and normalises to NFC', () => {
    expect(preparePassword('pass\u00a0word')).toBe('pass word');
    expect(preparePassword('pass\u3000word')).toBe('pass word');
    expect(preparePassword('cafe\u0301')).toBe('caf\u00e9');
    expect(preparePassword('caf\u00e9')).toBe(preparePassword('cafe\u0301'));
  });

  test('keeps case and width', () => {
    expect(preparePassword('\uff30\uff41\uff53\uff53')).toBe('\uff30\uff41\uff53\uff53');
    expect(preparePassword('Ünïcödé')).toBe('Ünïcödé'.normalize('NFC'));
  });

  test.each(['', '\u0007', 'pass\nword', 'pass\u0000', '\u00ad'])('rejects %j', (input) => {
    expect(() => preparePassword(input)).toThrow(PrecisError);
  });
});

describe('width mapping', () => {
  test('fullwidth and halfwidth forms map to their decompositions', () => {
    expect(widthMap('\uff21\uff42\uff10\uff01')).toBe('Ab0!');
    expect(widthMap('\u3000')).toBe(' ');
    expect(widthMap('\uff76\uff9e')).toBe('\u30ab\u3099'); // halfwidth ｶﾞ
    expect(widthMap('\uff76\uff9e').normalize('NFC')).toBe('\u30ac'); // ガ
    expect(widthMap('\uffe3')).toBe('\u00af'); // the decomposition mapping, not NFKC's ' \u0304'
    expect(widthMap('\uffa1')).toBe('\u3131'); // halfwidth Hangul → compatibility jamo
    expect(widthMap('plain')).toBe('plain');
    expect(widthMap('\u{1d400}')).toBe('\u{1d400}'); // <font>, not width
  });
});

describe('contextual rules (RFC 5892 Appendix A, draft-whited-precis-test-vectors)', () => {
  const ok = (h: string) => expect(() => checkStringClass(hex(h), 'identifier')).not.toThrow();
  const bad = (h: string) => expect(() => checkStringClass(hex(h), 'identifier')).toThrow(PrecisError);

  test('A.1 ZERO WIDTH NON-JOINER', () => {
    bad('e2808c');
    bad('e2808c61');
    bad('61e2808c');
    bad('e2808cd8a7');
    bad('d8ace2808c');
    bad('d890e2808cd890d8a7');
    bad('d8acd890e2808cd890');
    ok('d8ace2808cd8a7');
    ok('d8acd890e2808cd890d8a7');
    ok('d8acd890d890e2808cd890d890d8a7');
    ok('d8acd890e2808cd8a7');
    ok('d8ace2808cd890d8a7');
    ok('eaa1b2e2808cd8ac');
    ok('eaa1b2d890e2808cd890d8ac');
    ok('eaa1b2d890d890e2808cd890d890d8ac');
    ok('eaa1b2d890e2808cd8ac');
    ok('eaa1b2e2808cd890d8ac');
    ok('e0a98de2808c'); // virama + ZWNJ
    ok('eaa1b2e0a98de2808c');
    bad('eaa1b2e0a98dd890e2808c'); // virama + transparent + ZWNJ
    ok('e0ab8de2808c');
    ok('eaa1b2e0ab8de2808c');
    bad('eaa1b2e0ab8dd890e2808c');
    ok('eaa1b2e0ab8de2808cd8ac');
    ok('eaa1b2e2808ce0ab8dd8ac');
  });

  test('A.2 ZERO WIDTH JOINER', () => {
    bad('e2808d');
    bad('e2808d61');
    bad('61e2808d');
    ok('e0a98de2808d');
    ok('eaa1b2e0a98de2808d');
    bad('e0a98d61e2808d');
  });

  test('A.3 MIDDLE DOT', () => {
    bad('c2b7');
    bad('6cc2b7');
    bad('c2b76c');
    bad('61c2b7');
    bad('6cc2b761');
    bad('61c2b761');
    ok('6cc2b76c');
    ok('616cc2b76c61');
  });

  test('A.4 GREEK LOWER NUMERAL SIGN (KERAIA)', () => {
    bad('cdb5');
    bad('cdb561');
    bad('ceb1cdb5');
    ok('cdb5ceb1');
    ok('ceb1cdb5ceb1');
    ok('cdb5cdb5ceb1');
    ok('ceb1cdb5cdb5ceb1');
    bad('ceb1cdb5cdb5');
    bad('ceb1cdb5cdb561');
  });

  test('A.5 / A.6 HEBREW PUNCTUATION GERESH and GERSHAYIM', () => {
    bad('d7b3');
    bad('d7b3d794');
    bad('61d7b362');
    ok('d7a9d7b3');
    ok('d7a9d7b3d7b3d7b3');
    bad('d7b4');
    bad('d7b4d794');
    bad('61d7b462');
    ok('d7a9d7b4');
    ok('d7a9d7b4d7b4d7b4');
    ok('61d7a9d7b4d7b4d7b4');
  });

  test('A.7 KATAKANA MIDDLE DOT', () => {
    bad('e383bb');
    bad('616263e383bb');
    bad('e383bb646566');
    bad('616263e383bb646566');
    ok('61e3838563e383bb646566');
    ok('616263e383bb64e381b666');
    // U+2E90 (a CJK radical, Script=Han) is a symbol: FREE_PVAL, so check that one as Freeform
    expect(() => checkStringClass(hex('e2ba906263e383bb646566'), 'freeform')).not.toThrow();
    ok('e4b8ad6263e383bb646566'); // the same with 中
  });

  test('A.8 / A.9 ARABIC-INDIC DIGITS', () => {
    bad('d9a1d9a2d9a3d9a4d9a5dbb6');
    bad('dbb1dbb2dbb3dbb4dbb5d9a6');
    ok('d9a1d9a2d9a3d9a4d9a5');
    ok('dbb1dbb2dbb3dbb4dbb5');
  });

  test('contextual rules also apply through the profiles', () => {
    expect(enforceUsernameCaseMapped('l\u00b7l')).toBe('l\u00b7l');
    expect(() => enforceUsernameCaseMapped('a\u00b7b')).toThrow(PrecisError);
    expect(enforceUsernameCaseMapped('\u062c\u200c\u0627')).toBe('\u062c\u200c\u0627');
    expect(enforceUsernameCaseMapped('\u0628\u0661\u0662')).toBe('\u0628\u0661\u0662'); // AL then AN
    expect(enforceUsernameCaseMapped('\u06f1\u06f2')).toBe('\u06f1\u06f2'); // EN only: no RTL
    expect(() => enforceUsernameCaseMapped('\u0628\u0661\u06f2')).toThrow(PrecisError);
    expect(() => enforceOpaqueString('a\u200cb')).toThrow(PrecisError);
    expect(enforceOpaqueString('\u0915\u094d\u200d\u0937')).toBe('\u0915\u094d\u200d\u0937'); // क्‍ष
  });

  test('the FreeformClass accepts what the IdentifierClass leaves to it', () => {
    expect(() => checkStringClass('a b\u2163\u265a', 'freeform')).not.toThrow();
    expect(() => checkStringClass('a b', 'identifier')).toThrow(PrecisError);
  });
});

describe('Bidi Rule (RFC 5893)', () => {
  test.each<[string, boolean]>([
    ['abc', true],
    ['abc1', true],
    ['abc!', false], // rule 6, LTR must end in L or EN
    ['1abc', false], // rule 1
    ['\u05d0\u05d1', true],
    ['\u05d0\u05d1\u0301', true], // trailing NSM
    ['\u05d0a', false], // rule 2
    ['\u05d0!', false], // rule 3
    ['\u05d01', true],
    ['\u0627\u0661', true],
    ['\u0627\u0661\u06f1', false], // rule 4
    ['a\u05d0', false], // rule 5
  ])('%j: %s', (s, expected) => {
    expect(satisfiesBidiRule(s)).toBe(expected);
  });
});

describe('domain names (RFC 7622 §3.2, IDNA2008)', () => {
  test.each<[string, string]>([
    ['example.com', 'example.com'],
    ['EXAMPLE.com', 'example.com'],
    ['example.com.', 'example.com'],
    ['localhost', 'localhost'],
    ['a-b.example', 'a-b.example'],
    ['123.example', '123.example'],
    ['\u00c6X.example', '\u00e6x.example'], // ÆX.example
    ['xn--mnchen-3ya.de', 'm\u00fcnchen.de'], // A-labels become U-labels
    ['XN--MNCHEN-3YA.DE', 'm\u00fcnchen.de'],
    ['M\u00fcnchen.DE', 'm\u00fcnchen.de'],
    ['fa\u00df.de', 'fa\u00df.de'], // ß is PVALID (nontransitional)
    ['example\u3002com', 'example.com'], // IDEOGRAPHIC FULL STOP
    ['example\uff0ecom', 'example.com'], // FULLWIDTH FULL STOP
    ['example\uff61com', 'example.com'], // HALFWIDTH IDEOGRAPHIC FULL STOP
    ['\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d', 'example.com'], // fullwidth
    ['example.com\u3002', 'example.com'],
    ['\u4f8b\u3048.\u30c6\u30b9\u30c8', '\u4f8b\u3048.\u30c6\u30b9\u30c8'], // 例え.テスト
    ['\u05e9\u05dc\u05d5\u05dd.example', '\u05e9\u05dc\u05d5\u05dd.example'], // RTL label + LTR label
    ['192.0.2.1', '192.0.2.1'],
    ['[::1]', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[::ffff:192.0.2.1]', '[::ffff:192.0.2.1]'],
    ['[::1].', '[::1]'],
  ])('%j → %j', (input, output) => {
    expect(enforceDomainName(input)).toBe(output);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['.', 'only the trailing dot'],
    ['example.com..', 'two trailing dots'],
    ['.example.com', 'leading empty label'],
    ['a..b', 'empty label'],
    ['-abc.example', 'leading hyphen'],
    ['abc-.example', 'trailing hyphen'],
    ['a_b.example', 'underscore'],
    ['a b.example', 'space'],
    ['exa mple', 'space'],
    ['a@b', '@'],
    ['a/b', 'slash'],
    ['a:b', 'colon'],
    ['xn--zz.example', 'bad Punycode'],
    ['xn--a.example', 'bad Punycode'],
    ['xn--mnchen-3ya-.de', 'A-label with trailing hyphen'],
    ['\u2603.net', 'symbol (UTS #46 would allow it, IDNA2008 does not)'],
    ['\u01c6.example', 'ǆ is unstable under NFKC_Casefold'],
    ['\u2488.example', '⒈ maps to "1." under UTS #46'],
    ['\u0301a.example', 'leading combining mark'],
    ['a\u200cb.example', 'ZWNJ without context'],
    ['\u0661\u0662.example', 'Bidi Rule: label starting with AN'],
    ['\u05e9a.example', 'Bidi Rule: RTL label with L'],
    ['\u05e9\u05dc\u05d5\u05dd.1example', 'Bidi Rule: LTR label starting with a digit in a bidi domain'],
    ['a'.repeat(64) + '.example', 'label of 64 octets'],
    ['\u00e4'.repeat(60) + '.example', 'A-label longer than 63 octets'],
    ['[::1', 'unterminated IP literal'],
    ['[example.com]', 'not an IPv6 address'],
    ['[192.0.2.1]', 'IPv4 in brackets'],
    ['[fe80::1%eth0]', 'zone identifier'],
    ['exa\u0000mple.com', 'control'],
  ])('rejects %j (%s)', (input) => {
    expect(() => enforceDomainName(input)).toThrow(PrecisError);
  });

  test('labels of 63 octets and domains of 1023 bytes are fine, 1024 bytes are not', () => {
    const l63 = 'a'.repeat(63);
    expect(enforceDomainName(l63 + '.example')).toBe(l63 + '.example');
    const base = Array(15).fill(l63).join('.'); // 959 bytes
    const d1023 = base + '.' + 'b'.repeat(63);
    const d1024 = base + '.' + 'b'.repeat(62) + '.c';
    expect(Buffer.byteLength(d1023)).toBe(1023);
    expect(Buffer.byteLength(d1024)).toBe(1024);
    expect(enforceDomainName(d1023)).toBe(d1023);
    expect(enforceDomainName(d1023 + '.')).toBe(d1023);
    expect(enforceDomainName(d1023.toUpperCase())).toBe(d1023);
    expect(() => enforceDomainName(d1024)).toThrow(PrecisError);
    expect(() => enforceDomainName(d1024.replace('c', '\u00e7'))).toThrow(PrecisError); // slow path
    // the byte limit is on the UTF-8 form, not on code points
    const u = ('\u00e4'.repeat(20) + '.').repeat(25) + 'abc'; // 25 * 41 + 3 = 1028 bytes
    expect(() => enforceDomainName(u)).toThrow(PrecisError);
  });
});
