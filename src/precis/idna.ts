/**
 * Domain names as RFC 7622 §3.2 wants them in a JID domainpart: an IP literal as it is, or a
 * fully qualified domain name whose labels are NR-LDH labels or IDNA2008 U-labels (A-labels are
 * converted to U-labels), after the RFC 5895 mappings (full stops, width, lower case, NFC).
 *
 * IDNA2008 validity (RFC 5891 §5.4, RFC 5892 derived property, RFC 5893 Bidi Rule) is checked
 * here; Node's `url.domainToASCII` (UTS #46, nontransitional, CheckBidi and CheckJoiners on)
 * supplies Punycode and a second opinion: a label it rejects or would map is rejected.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';

import {
  PrecisError,
  codePoints,
  contextRuleAllows,
  derivedProperty,
  hasRtl,
  satisfiesBidiRule,
  widthMap,
} from './index';

const MAX_DOMAIN_BYTES = 1023;
const MAX_LABEL_OCTETS = 63;

/** LDH labels, optional trailing dot: the common case, accepted without Unicode work. */
const RE_ASCII_DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?$/i;
const RE_ASCII_UPPER = /[A-Z]/;
/** A label that claims to be an A-label: must be decoded and checked. */
const RE_ACE_PREFIX = /(?:^|\.)xn--/i;
/** An NR-LDH label (RFC 5890 §2.3.1), lower-cased. */
const RE_LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const RE_IDEOGRAPHIC_FULL_STOPS = /[\u3002\uff0e\uff61]/g;
const RE_STARTS_WITH_MARK = /^\p{M}/u;
const RE_UNSTABLE = /\p{Changes_When_NFKC_Casefolded}/u;
const RE_NON_ASCII = /[^\x00-\x7f]/;

/**
 * RFC 7622 §3.2 preparation and enforcement of a domainpart. Returns the canonical form: IP
 * literals unchanged (IPv6 hex digits lower-cased), otherwise lower-cased U-labels joined by
 * '.', without the trailing dot. Throws PrecisError.
 */
export function enforceDomainName(s: string): string {
  if (RE_ASCII_DOMAIN.test(s) && !RE_ACE_PREFIX.test(s)) {
    const out = s.endsWith('.') ? s.slice(0, -1) : s;
    if (out.length > MAX_DOMAIN_BYTES) throw new PrecisError('domain longer than 1023 bytes');
    return RE_ASCII_UPPER.test(out) ? out.toLowerCase() : out;
  }
  let d = widthMap(s).replace(RE_IDEOGRAPHIC_FULL_STOPS, '.');
  if (d.endsWith('.')) d = d.slice(0, -1); // RFC 7622 §3.2: strip one trailing label separator
  if (d.length === 0) throw new PrecisError('empty domain');
  if (d.startsWith('[')) return ipLiteral(d);
  if (isIPv4(d)) return d;
  d = d.toLowerCase().normalize('NFC');
  if (Buffer.byteLength(d, 'utf8') > MAX_DOMAIN_BYTES) throw new PrecisError('domain longer than 1023 bytes');

  const labels = d.split('.');
  const labelCps: number[][] = [];
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label.length === 0) throw new PrecisError('empty domain label');
    if (!RE_NON_ASCII.test(label)) {
      if (label.startsWith('xn--')) {
        const u = domainToUnicode(label);
        if (u === '' || domainToASCII(u) !== label) throw new PrecisError(`invalid A-label '${label}'`);
        labels[i] = u;
        labelCps.push(checkULabel(u, label));
      } else {
        if (!RE_LDH_LABEL.test(label)) throw new PrecisError(`invalid domain label '${label}'`);
        if (label.length > MAX_LABEL_OCTETS) throw new PrecisError('domain label longer than 63 octets');
        labelCps.push(codePoints(label));
      }
    } else {
      labelCps.push(checkULabel(label, domainToASCII(label)));
    }
  }
  // RFC 5893: in a domain name with an RTL label, every label must satisfy the Bidi Rule.
  if (labelCps.some(hasRtl) && !labelCps.every((cps) => satisfiesBidiRule(cps))) {
    throw new PrecisError('domain violates the Bidi Rule');
  }
  const out = labels.join('.');
  if (Buffer.byteLength(out, 'utf8') > MAX_DOMAIN_BYTES) throw new PrecisError('domain longer than 1023 bytes');
  return out;
}

function ipLiteral(d: string): string {
  const inner = d.endsWith(']') ? d.slice(1, -1) : '';
  // RFC 3986 IP-literal; zone identifiers (RFC 6874) and IPvFuture are not JID material.
  if (inner.includes('%') || !isIPv6(inner)) throw new PrecisError('invalid IP literal');
  return '[' + inner.toLowerCase() + ']';
}

/**
 * IDNA2008 U-label checks (RFC 5891 §5.4): NFC (already applied), hyphen restrictions, no
 * leading combining mark, every code point PVALID or allowed by its contextual rule, and an
 * A-label of at most 63 octets that maps back to the label unchanged.
 */
function checkULabel(label: string, ascii: string): number[] {
  const cps = codePoints(label);
  if (label.startsWith('-') || label.endsWith('-')) throw new PrecisError(`domain label '${label}' starts or ends with '-'`);
  if (cps[2] === 0x2d && cps[3] === 0x2d) throw new PrecisError(`domain label '${label}' has '--' in positions 3 and 4`);
  if (RE_STARTS_WITH_MARK.test(label)) throw new PrecisError(`domain label '${label}' starts with a combining mark`);
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    if (cp < 0x80) {
      if (!((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d)) {
        throw new PrecisError('code point not allowed in a domain label', cp);
      }
      continue;
    }
    if (!idnaAllows(cps, i)) throw new PrecisError('code point not allowed in a domain label', cp);
  }
  if (ascii === '' || !ascii.startsWith('xn--') || ascii.includes('.') || domainToUnicode(ascii) !== label) {
    throw new PrecisError(`invalid internationalized domain label '${label}'`);
  }
  if (ascii.length > MAX_LABEL_OCTETS) throw new PrecisError('domain label longer than 63 octets');
  return cps;
}

/** The RFC 5892 derived property of a non-ASCII code point, as PVALID or contextually allowed. */
function idnaAllows(cps: readonly number[], i: number): boolean {
  const cp = cps[i]!;
  // The PRECIS algorithm shares the Exceptions, JoinControl, OldHangulJamo, ignorable-property
  // and LetterDigits steps with IDNA2008; IDNA2008 adds Unstable (NFKC_Casefold changes the
  // code point, which covers HasCompat) and IgnorableBlocks.
  switch (derivedProperty(cp)) {
    case 'PVALID':
      break;
    case 'CONTEXTJ':
    case 'CONTEXTO':
      return contextRuleAllows(cps, i);
    default:
      return false;
  }
  if (cp === 0x00df || cp === 0x03c2 || cp === 0x06fd || cp === 0x06fe || cp === 0x0f0b || cp === 0x3007) {
    return true; // Exceptions: PVALID before any other rule
  }
  if (RE_UNSTABLE.test(String.fromCodePoint(cp))) return false;
  if ((cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0x1d100 && cp <= 0x1d24f)) return false; // IgnorableBlocks
  return true;
}
