/**
 * PRECIS (RFC 8264) string classes and the RFC 8265 profiles the server needs:
 *
 *  - UsernameCaseMapped (IdentifierClass): JID localparts, SASL authentication identities;
 *  - OpaqueString (FreeformClass): JID resourceparts and passwords (the successor of SASLprep,
 *    so SCRAM and PLAIN derive keys from the same prepared string).
 *
 * The derived-property algorithm of RFC 8264 §8 runs on JavaScript's Unicode property escapes
 * (`\p{...}`), so it follows the Unicode version of the running Node.js; only Bidi_Class,
 * Joining_Type, Virama and the width mappings come from the small generated `tables.ts`.
 *
 * Every profile starts with a single regular-expression test that accepts the plain-ASCII
 * common case without any Unicode work.
 */
import {
  BIDI_RANGES,
  JOINING_RANGES,
  MARK_BIDI_EXCEPTIONS,
  NOT_TRANSPARENT,
  VIRAMA_RANGES,
  WIDTH_RUNS,
} from './tables';

export class PrecisError extends Error {
  /** The offending code point, when one is to blame. */
  readonly codePoint: number | undefined;

  constructor(message: string, codePoint?: number) {
    super(codePoint === undefined ? message : `${message} (U+${hex(codePoint)})`);
    this.name = 'PrecisError';
    this.codePoint = codePoint;
  }
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}

// ---------------------------------------------------------------------------------------------
// Derived property (RFC 8264 §8, categories in §9)
// ---------------------------------------------------------------------------------------------

/**
 * The PRECIS derived property value of a code point. `ID_DIS` stands for "ID_DIS or FREE_PVAL":
 * disallowed in the IdentifierClass, valid in the FreeformClass.
 */
export type DerivedProperty = 'PVALID' | 'ID_DIS' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED' | 'UNASSIGNED';

export type StringClass = 'identifier' | 'freeform';

/** RFC 5892 §2.6 Exceptions (F), which PRECIS inherits (RFC 8264 §9.6). */
const EXCEPTIONS = new Map<number, DerivedProperty>();
for (const cp of [0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]) EXCEPTIONS.set(cp, 'PVALID');
for (const cp of [0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb]) EXCEPTIONS.set(cp, 'CONTEXTO');
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');
for (const cp of [0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]) {
  EXCEPTIONS.set(cp, 'DISALLOWED');
}

const RE_UNASSIGNED = /\p{Cn}/u;
const RE_NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
/** PrecisIgnorableProperties (RFC 8264 §9.13). */
const RE_IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;
const RE_CONTROL = /\p{Cc}/u;
/** LetterDigits (RFC 5892 §2.1 / RFC 8264 §9.1). */
const RE_LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;
/** OtherLetterDigits, Spaces, Symbols, Punctuation (RFC 8264 §9.17-9.20): ID_DIS or FREE_PVAL. */
const RE_FREE_ONLY = /[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]/u;
const RE_MARK = /[\p{Mn}\p{Me}]/u;
const RE_MARK_OR_FORMAT = /[\p{Mn}\p{Me}\p{Cf}]/u;

/** OldHangulJamo (RFC 5892 §2.9): Hangul_Syllable_Type L, V or T; only assigned ones get here. */
export function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

/** RFC 8264 §8: the derived property value of one code point. */
export function derivedProperty(cp: number): DerivedProperty {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  // BackwardCompatible (RFC 8264 §9.7) is empty.
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID'; // ASCII7
  const ch = String.fromCodePoint(cp);
  if (RE_UNASSIGNED.test(ch) && !RE_NONCHARACTER.test(ch)) return 'UNASSIGNED';
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXTJ'; // JoinControl
  if (isOldHangulJamo(cp)) return 'DISALLOWED';
  if (RE_IGNORABLE.test(ch)) return 'DISALLOWED';
  if (RE_CONTROL.test(ch)) return 'DISALLOWED';
  if (ch.normalize('NFKC') !== ch) return 'ID_DIS'; // HasCompat
  if (RE_LETTER_DIGITS.test(ch)) return 'PVALID';
  if (RE_FREE_ONLY.test(ch)) return 'ID_DIS';
  return 'DISALLOWED'; // Zl, Zp, Cf, Co, Cs
}

// ---------------------------------------------------------------------------------------------
// Generated tables
// ---------------------------------------------------------------------------------------------

interface RangeTable {
  starts: Uint32Array;
  ends: Uint32Array;
  values: Uint8Array;
}

/** Decodes the "start delta . length-1 letter" base-36 encoding of tables.ts. */
function decodeRanges(encoded: string): RangeTable {
  const re = /([0-9a-z]+)\.([0-9a-z]+)([A-Z])/g;
  const starts: number[] = [];
  const ends: number[] = [];
  const values: number[] = [];
  let prev = 0;
  for (let m = re.exec(encoded); m !== null; m = re.exec(encoded)) {
    const start = prev + parseInt(m[1]!, 36);
    starts.push(start);
    ends.push(start + parseInt(m[2]!, 36));
    values.push(m[3]!.charCodeAt(0) - 65);
    prev = start;
  }
  return { starts: Uint32Array.from(starts), ends: Uint32Array.from(ends), values: Uint8Array.from(values) };
}

/** The value of the range holding cp, or -1. */
function lookup(table: RangeTable, cp: number): number {
  let lo = 0;
  let hi = table.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < table.starts[mid]!) hi = mid - 1;
    else if (cp > table.ends[mid]!) lo = mid + 1;
    else return table.values[mid]!;
  }
  return -1;
}

let bidiTable: RangeTable | undefined;
let joiningTable: RangeTable | undefined;
let markBidi: Map<number, number> | undefined;
let notTransparent: Set<number> | undefined;

export type BidiClass = 'R' | 'AL' | 'AN' | 'EN' | 'ES' | 'CS' | 'ET' | 'ON' | 'BN' | 'NSM' | 'L' | 'other';
/** In the order of the letters A, B, C, ... of tables.ts. */
const BIDI_CLASSES: readonly BidiClass[] = ['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM', 'L', 'other'];

/** Bidi_Class of a code point (B, S, WS and the explicit formatting classes read as 'other'). */
export function bidiClass(cp: number): BidiClass {
  if (cp < 0x80) {
    if ((cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)) return 'L';
  }
  const ch = String.fromCodePoint(cp);
  if (RE_MARK.test(ch)) {
    if (markBidi === undefined) {
      markBidi = new Map(MARK_BIDI_EXCEPTIONS.map(([c, letter]) => [c, letter.charCodeAt(0) - 65]));
    }
    const v = markBidi.get(cp);
    return v === undefined ? 'NSM' : BIDI_CLASSES[v]!;
  }
  if (bidiTable === undefined) bidiTable = decodeRanges(BIDI_RANGES);
  const v = lookup(bidiTable, cp);
  return v === -1 ? 'L' : BIDI_CLASSES[v]!;
}

export type JoiningType = 'D' | 'L' | 'R' | 'T' | 'U';
const JOINING_TYPES: readonly JoiningType[] = ['D', 'L', 'R', 'T'];

/** Joining_Type as RFC 5892 Appendix A.1 uses it (C reads as U). */
export function joiningType(cp: number): JoiningType {
  if (RE_MARK_OR_FORMAT.test(String.fromCodePoint(cp))) {
    if (notTransparent === undefined) notTransparent = new Set(NOT_TRANSPARENT);
    return notTransparent.has(cp) ? 'U' : 'T';
  }
  if (joiningTable === undefined) joiningTable = decodeRanges(JOINING_RANGES);
  const v = lookup(joiningTable, cp);
  return v === -1 ? 'U' : JOINING_TYPES[v]!;
}

export function isVirama(cp: number): boolean {
  for (const [first, last] of VIRAMA_RANGES) {
    if (cp < first) return false;
    if (cp <= last) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Contextual rules (RFC 5892 Appendix A)
// ---------------------------------------------------------------------------------------------

const RE_GREEK = /\p{Script=Greek}/u;
const RE_HEBREW = /\p{Script=Hebrew}/u;
const RE_HIRAGANA_KATAKANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

function scriptIs(re: RegExp, cp: number | undefined): boolean {
  return cp !== undefined && re.test(String.fromCodePoint(cp));
}

/** Whether the CONTEXTJ / CONTEXTO code point at cps[i] is allowed where it stands. */
export function contextRuleAllows(cps: readonly number[], i: number): boolean {
  const cp = cps[i]!;
  const before = i > 0 ? cps[i - 1] : undefined;
  const after = cps[i + 1];
  switch (cp) {
    case 0x200c: {
      // A.1 ZERO WIDTH NON-JOINER
      if (before !== undefined && isVirama(before)) return true;
      let j = i - 1;
      while (j >= 0 && joiningType(cps[j]!) === 'T') j--;
      if (j < 0) return false;
      const left = joiningType(cps[j]!);
      if (left !== 'L' && left !== 'D') return false;
      let k = i + 1;
      while (k < cps.length && joiningType(cps[k]!) === 'T') k++;
      if (k >= cps.length) return false;
      const right = joiningType(cps[k]!);
      return right === 'R' || right === 'D';
    }
    case 0x200d: // A.2 ZERO WIDTH JOINER
      return before !== undefined && isVirama(before);
    case 0x00b7: // A.3 MIDDLE DOT
      return before === 0x006c && after === 0x006c;
    case 0x0375: // A.4 GREEK LOWER NUMERAL SIGN (KERAIA)
      return scriptIs(RE_GREEK, after);
    case 0x05f3: // A.5 HEBREW PUNCTUATION GERESH
    case 0x05f4: // A.6 HEBREW PUNCTUATION GERSHAYIM
      return scriptIs(RE_HEBREW, before);
    case 0x30fb: // A.7 KATAKANA MIDDLE DOT
      return cps.some((c) => c !== 0x30fb && scriptIs(RE_HIRAGANA_KATAKANA_HAN, c));
    default:
      if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9); // A.8
      if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669); // A.9
      return false; // no rule: not allowed
  }
}

/** Code points of a string (lone surrogates come out as themselves, and are DISALLOWED). */
export function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

/**
 * Throws PrecisError unless every code point is valid in the string class: PVALID (or FREE_PVAL
 * for the FreeformClass), or CONTEXTJ / CONTEXTO with its contextual rule satisfied.
 */
export function checkStringClass(s: string | readonly number[], cls: StringClass): void {
  const cps = typeof s === 'string' ? codePoints(s) : s;
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    switch (derivedProperty(cp)) {
      case 'PVALID':
        break;
      case 'ID_DIS':
        if (cls === 'identifier') throw new PrecisError('code point not allowed in the IdentifierClass', cp);
        break;
      case 'CONTEXTJ':
      case 'CONTEXTO':
        if (!contextRuleAllows(cps, i)) throw new PrecisError('code point not allowed in this context', cp);
        break;
      case 'UNASSIGNED':
        throw new PrecisError('unassigned code point', cp);
      case 'DISALLOWED':
        throw new PrecisError('disallowed code point', cp);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bidi Rule (RFC 5893 §2)
// ---------------------------------------------------------------------------------------------

/** Whether the string holds a right-to-left code point (Bidi_Class R, AL or AN). */
export function hasRtl(cps: readonly number[]): boolean {
  for (const cp of cps) {
    if (cp < 0x0590) continue; // nothing below the Hebrew block is R, AL or AN
    const c = bidiClass(cp);
    if (c === 'R' || c === 'AL' || c === 'AN') return true;
  }
  return false;
}

const RTL_ALLOWED = new Set<BidiClass>(['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);
const LTR_ALLOWED = new Set<BidiClass>(['L', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);

/** The six conditions of the Bidi Rule, applied to one label / string. */
export function satisfiesBidiRule(s: string | readonly number[]): boolean {
  const cps = typeof s === 'string' ? codePoints(s) : s;
  if (cps.length === 0) return true;
  const classes = cps.map(bidiClass);
  const first = classes[0]!;
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last]!;
  if (first === 'R' || first === 'AL') {
    if (!classes.every((c) => RTL_ALLOWED.has(c))) return false; // 2
    if (end !== 'R' && end !== 'AL' && end !== 'EN' && end !== 'AN') return false; // 3
    return !(classes.includes('EN') && classes.includes('AN')); // 4
  }
  if (first === 'L') {
    if (!classes.every((c) => LTR_ALLOWED.has(c))) return false; // 5
    return end === 'L' || end === 'EN'; // 6
  }
  return false; // 1
}

// ---------------------------------------------------------------------------------------------
// Mapping rules
// ---------------------------------------------------------------------------------------------

const RE_HAS_WIDTH = /[\u3000\uff01-\uffee]/u;

/** Width Mapping Rule (RFC 8265 §3.3.1): fullwidth / halfwidth code points to their decompositions. */
export function widthMap(s: string): string {
  if (!RE_HAS_WIDTH.test(s)) return s;
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    let mapped = ch;
    if (cp === 0x3000 || (cp >= 0xff01 && cp <= 0xffee)) {
      for (const [first, last, target] of WIDTH_RUNS) {
        if (cp < first) break;
        if (cp <= last) {
          mapped = String.fromCodePoint(target + cp - first);
          break;
        }
      }
    }
    out += mapped;
  }
  return out;
}

const RE_NON_ASCII_SPACE = /(?!\u0020)\p{Zs}/gu;

/** OpaqueString Additional Mapping Rule (RFC 8265 §4.2.1): non-ASCII spaces to U+0020. */
export function mapNonAsciiSpaces(s: string): string {
  return s.replace(RE_NON_ASCII_SPACE, ' ');
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

/** Printable ASCII: PVALID in the IdentifierClass, and unchanged by every mapping but case. */
const RE_ASCII_IDENTIFIER = /^[\x21-\x7e]+$/;
/** Printable ASCII and space: valid in the FreeformClass and unchanged by OpaqueString. */
const RE_ASCII_FREEFORM = /^[\x20-\x7e]+$/;

function usernameProfile(s: string, caseMap: boolean): string {
  if (RE_ASCII_IDENTIFIER.test(s)) return caseMap ? s.toLowerCase() : s;
  let out = widthMap(s);
  if (caseMap) out = out.toLowerCase();
  out = out.normalize('NFC');
  if (out.length === 0) throw new PrecisError('empty username');
  const cps = codePoints(out);
  checkStringClass(cps, 'identifier');
  if (hasRtl(cps) && !satisfiesBidiRule(cps)) throw new PrecisError('string violates the Bidi Rule');
  return out;
}

/**
 * RFC 8265 §3.3 UsernameCaseMapped (enforcement): width mapping, toLowerCase, NFC, Bidi Rule,
 * IdentifierClass. Throws PrecisError.
 */
export function enforceUsernameCaseMapped(s: string): string {
  return usernameProfile(s, true);
}

/** RFC 8265 §3.4 UsernameCasePreserved (enforcement). Throws PrecisError. */
export function enforceUsernameCasePreserved(s: string): string {
  return usernameProfile(s, false);
}

/**
 * RFC 8265 §4.2 OpaqueString (enforcement): non-ASCII spaces to U+0020, NFC, FreeformClass.
 * Case and width are preserved; there is no Bidi Rule. Throws PrecisError.
 */
export function enforceOpaqueString(s: string): string {
  if (RE_ASCII_FREEFORM.test(s)) return s;
  const out = mapNonAsciiSpaces(s).normalize('NFC');
  if (out.length === 0) throw new PrecisError('empty string');
  checkStringClass(out, 'freeform');
  return out;
}

/**
 * Prepares a password for SCRAM or PLAIN: PRECIS OpaqueString (RFC 8265 §4), the successor of
 * SASLprep (RFC 4013). Throws PrecisError for an empty string or one holding a code point the
 * FreeformClass disallows (controls, unassigned, private-use, default-ignorable, ...).
 */
export function preparePassword(s: string): string {
  return enforceOpaqueString(s);
}
