#!/usr/bin/env python3
"""Regenerates src/precis/tables.ts: the few Unicode properties that JavaScript regular
expressions cannot test (Bidi_Class, Joining_Type, Canonical_Combining_Class=Virama and the
<wide>/<narrow> decomposition mappings). Everything else PRECIS needs is tested at run time
with \\p{...} property escapes, so it follows the Unicode version of the running Node.js.

Needs the third-party `regex` module (pip install regex) built for the same Unicode version as
the Node.js that runs the server:

    python3 src/precis/gen-tables.py "$(node -p process.versions.unicode)" > src/precis/tables.ts

Unassigned code points (other than noncharacters), private-use code points and surrogates are
"don't care" when building ranges: PRECIS and IDNA reject them before they look these tables up,
so a range may run across them, which keeps the tables small. Marks (Mn, Me) are "don't care"
for Bidi_Class and Mn/Me/Cf for Joining_Type: the run-time code derives NSM and T from the
General_Category and the exception lists emitted here.
"""
import sys
import unicodedata

import regex

MAX = 0x110000
UNICODE_VERSION = sys.argv[1] if len(sys.argv) > 1 else 'unknown'


def rx(p):
    r = regex.compile(p)
    return lambda cp: bool(r.match(chr(cp)))


is_cn = rx(r'\p{Cn}')
is_nonchar = rx(r'\p{Noncharacter_Code_Point}')
is_mn_me = rx(r'[\p{Mn}\p{Me}]')
is_mn_me_cf = rx(r'[\p{Mn}\p{Me}\p{Cf}]')


def dont_care(cp):
    if 0xD800 <= cp <= 0xDFFF or 0xE000 <= cp <= 0xF8FF or cp >= 0xF0000:
        return True
    return is_cn(cp) and not is_nonchar(cp)


def runs(value, default):
    """[(start, end, v)] for every v != default; value(cp) None means don't care."""
    out = []
    cur = None
    start = end = 0
    for cp in range(MAX):
        if dont_care(cp):
            continue
        v = value(cp)
        if v is None:
            continue
        if v == cur:
            end = cp
            continue
        if cur is not None and cur != default:
            out.append((start, end, cur))
        cur = v
        start = end = cp
    if cur is not None and cur != default:
        out.append((start, end, cur))
    return out


def base36(n):
    digits = '0123456789abcdefghijklmnopqrstuvwxyz'
    out = ''
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def encode(rs, letters):
    """start delta (base 36) '.' length-1 (base 36) class letter, concatenated."""
    parts = []
    prev = 0
    for s, e, v in rs:
        parts.append('%s.%s%s' % (base36(s - prev), base36(e - s), letters[v]))
        prev = s
    return ''.join(parts)


def ts_string(s, width=96):
    chunks = [s[i:i + width] for i in range(0, len(s), width)] or ['']
    return '\n' + ' +\n'.join("  '%s'" % c for c in chunks)


def hexlist(cps):
    return '[' + ', '.join('0x%04x' % c for c in cps) + ']'


# ---- Bidi_Class ----------------------------------------------------------------------------
BIDI = ['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM', 'L']
bidi_tests = [(c, rx(r'\p{Bidi_Class=%s}' % c)) for c in BIDI]
BIDI_LETTERS = {'R': 'A', 'AL': 'B', 'AN': 'C', 'EN': 'D', 'ES': 'E', 'CS': 'F', 'ET': 'G',
                'ON': 'H', 'BN': 'I', 'NSM': 'J', 'L': 'K', 'X': 'L'}
mark_not_nsm = []


def bidi_class(cp):
    for c, t in bidi_tests:
        if t(cp):
            return c
    return 'X'  # B, S, WS and the explicit embedding / isolate controls


def bidi_value(cp):
    c = bidi_class(cp)
    if is_mn_me(cp):
        if c != 'NSM':
            mark_not_nsm.append((cp, c))
        return None
    return c


bidi_runs = runs(bidi_value, 'L')

# ---- Joining_Type --------------------------------------------------------------------------
JT = ['D', 'L', 'R', 'T', 'C']
jt_tests = [(c, rx(r'\p{Joining_Type=%s}' % c)) for c in JT]
JT_LETTERS = {'D': 'A', 'L': 'B', 'R': 'C', 'T': 'D'}
t_exceptions = []  # Mn/Me/Cf whose Joining_Type is not T


def joining_type(cp):
    for c, t in jt_tests:
        if t(cp):
            return c
    return 'U'


def jt_value(cp):
    j = joining_type(cp)
    if is_mn_me_cf(cp):
        if j != 'T':
            # the run-time code treats these as non-joining (U); C counts as U for RFC 5892
            assert j in ('U', 'C'), hex(cp)
            t_exceptions.append(cp)
        return None
    if j == 'C':
        j = 'U'
    return j


jt_runs = runs(jt_value, 'U')

# ---- Virama --------------------------------------------------------------------------------
is_virama = rx(r'\p{ccc=9}')
virama_runs = runs(lambda cp: 'V' if is_virama(cp) else 'N', 'N')

# ---- Width mapping (Python's own unicodedata: these mappings have not changed in years) ------
width_runs = []
for cp in range(MAX):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    d = unicodedata.decomposition(chr(cp))
    if d.startswith('<wide>') or d.startswith('<narrow>'):
        target = d.split()[1:]
        assert len(target) == 1, hex(cp)
        t = int(target[0], 16)
        if width_runs and width_runs[-1][1] == cp - 1 and width_runs[-1][2] + (cp - width_runs[-1][0]) == t:
            width_runs[-1] = (width_runs[-1][0], cp, width_runs[-1][2])
        else:
            width_runs.append((cp, cp, t))

w = sys.stdout.write
w('// GENERATED by src/precis/gen-tables.py (Unicode %s): do not edit by hand.\n' % UNICODE_VERSION)
w('// Tables for the Unicode properties that JavaScript \\p{...} escapes cannot test.\n\n')
w("/** Unicode version the tables were generated from (compare with process.versions.unicode). */\n")
w("export const TABLES_UNICODE_VERSION = '%s';\n\n" % UNICODE_VERSION)
w('/**\n * Bidi_Class ranges other than L, excluding marks (Mn, Me: NSM unless listed in\n'
  ' * MARK_BIDI_EXCEPTIONS). Encoding: base-36 start delta, ".", base-36 (length - 1), class letter\n'
  ' * (A=R B=AL C=AN D=EN E=ES F=CS G=ET H=ON I=BN J=NSM K=L L=other).\n */\n')
w('export const BIDI_RANGES =%s;\n\n' % ts_string(encode(bidi_runs, BIDI_LETTERS)))
w('/** Marks (Mn, Me) whose Bidi_Class is not NSM, as [code point, class letter] pairs. */\n')
w('export const MARK_BIDI_EXCEPTIONS: ReadonlyArray<readonly [number, string]> = [%s];\n\n'
  % ', '.join("[0x%04x, '%s']" % (cp, BIDI_LETTERS[c]) for cp, c in mark_not_nsm))
w('/** Joining_Type D (A), L (B), R (C) ranges outside Mn/Me/Cf, same encoding as BIDI_RANGES. */\n')
w('export const JOINING_RANGES =%s;\n\n' % ts_string(encode(jt_runs, JT_LETTERS)))
w('/** Mn/Me/Cf code points whose Joining_Type is not T (Transparent). */\n')
w('export const NOT_TRANSPARENT: readonly number[] = %s;\n\n' % hexlist(t_exceptions))
w('/** Canonical_Combining_Class = Virama (9), as [first, last] ranges. */\n')
w('export const VIRAMA_RANGES: ReadonlyArray<readonly [number, number]> = [%s];\n\n'
  % ', '.join('[0x%04x, 0x%04x]' % (s, e) for s, e, _ in virama_runs))
w('/** <wide>/<narrow> decompositions as [first, last, decomposition of first] runs. */\n')
w('export const WIDTH_RUNS: ReadonlyArray<readonly [number, number, number]> = [%s];\n'
  % ', '.join('[0x%04x, 0x%04x, 0x%04x]' % r for r in width_runs))
sys.stderr.write('bidi %d jt %d virama %d width %d mark_not_nsm %d t_exc %d\n' % (
    len(bidi_runs), len(jt_runs), len(virama_runs), len(width_runs), len(mark_not_nsm), len(t_exceptions)))
