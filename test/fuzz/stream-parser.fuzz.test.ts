// Property-based fuzzing of the StreamParser: whatever bytes arrive, split however, the
// parser ends in parsed stanzas or one stream error; it never throws, never hangs, and never
// holds more than about a stanza's worth of input.
//
// CI runs a fixed seed and a few thousand cases; XMPPD_FUZZ_RUNS=1000000 (and optionally
// XMPPD_FUZZ_SEED) is the long mode for release checks.
import fc from 'fast-check';
import type { Element } from '../../src/xml/element';
import type { StreamError } from '../../src/errors';
import { StreamParser } from '../../src/xml/stream-parser';
import { HEADER, pathological, runs, seed, split, stanza, streamBody } from './generators';

const LIMITS = { maxStanzaBytes: 10000, maxDepth: 8, maxAttributes: 16 };
/**
 * What the parser may hold beyond one stanza: the size limit is checked once per piece of
 * input (max(4096, min(65536, maxStanzaBytes)) bytes), so a stanza in progress may overshoot
 * by one piece before it is refused; plus bounded look-aheads.
 */
const SLACK = Math.max(4096, Math.min(65536, LIMITS.maxStanzaBytes)) + 1024;
/** Wall-clock budget per case: generous for slow CI machines, far below a hang. */
const CASE_MS = 2000;
const PARSER_CONDITIONS = ['not-well-formed', 'restricted-xml', 'bad-namespace-prefix', 'unsupported-encoding', 'bad-format', 'policy-violation', 'invalid-namespace'];
const LONG = Number(process.env.XMPPD_FUZZ_RUNS) > 0;

interface Outcome {
  els: string[];
  errors: StreamError[];
  opens: number;
  elsAfterError: number;
  maxRetained: number;
  finalRetained: number;
}

function run(chunks: Buffer[], end = false): Outcome {
  const o: Outcome = { els: [], errors: [], opens: 0, elsAfterError: 0, maxRetained: 0, finalRetained: 0 };
  const parser = new StreamParser({
    onOpen: () => void o.opens++,
    onElement: (el: Element) => {
      if (o.errors.length > 0) o.elsAfterError++;
      o.els.push(el.toString());
    },
    onClose: () => undefined,
    onError: (e) => o.errors.push(e),
  }, LIMITS);
  for (const c of chunks) {
    parser.write(c);
    o.maxRetained = Math.max(o.maxRetained, parser.retainedSize());
  }
  if (end) parser.end();
  o.finalRetained = parser.retainedSize();
  return o;
}

function checkInvariants(o: Outcome): void {
  expect(o.errors.length).toBeLessThanOrEqual(1);
  expect(o.elsAfterError).toBe(0);
  expect(o.maxRetained).toBeLessThanOrEqual(LIMITS.maxStanzaBytes + SLACK);
  // After a stream error the parser lets go of everything at once.
  if (o.errors.length > 0) expect(o.finalRetained).toBe(0);
}

/** fc.assert, with counterexamples cut short (they can be megabytes of 'n'). */
function check<T>(prop: fc.IProperty<T>, numRuns: number): void {
  const r = fc.check(prop, { seed: seed(), numRuns: runs(numRuns), endOnFailure: true });
  if (r.failed) {
    const msg = `${String(r.errorInstance).slice(0, 1500)}\n${fc.defaultReportMessage(r) ?? 'property failed'}`;
    throw new Error(msg.length > 4000 ? msg.slice(0, 2000) + `\n… (${msg.length} characters) …\n` + msg.slice(-2000) : msg);
  }
}

function timed<T>(f: () => T): T {
  const t0 = performance.now();
  const r = f();
  const ms = performance.now() - t0;
  if (ms > CASE_MS) throw new Error(`case took ${ms.toFixed(0)} ms`);
  return r;
}


describe('StreamParser fuzz', () => {
  jest.setTimeout(LONG ? 24 * 3600_000 : 60_000);

  it('parses valid stanzas identically whatever the byte boundaries (every boundary for short input)', () => {
    check(fc.property(fc.array(stanza, { minLength: 1, maxLength: 4 }), (stanzas) => {
      const buf = Buffer.from(HEADER + stanzas.join(''));
      const whole = run([buf]);
      checkInvariants(whole);
      const want = whole.els.join('\n') + '|' + whole.errors.map((e) => e.condition).join();
      const got = (o: Outcome) => o.els.join('\n') + '|' + o.errors.map((e) => e.condition).join();
      const points = buf.length <= 400 ? Array.from({ length: buf.length }, (_, i) => i) : Array.from({ length: 40 }, (_, i) => Math.floor((i * buf.length) / 40));
      timed(() => {
        for (const p of points) {
          const o = run([buf.subarray(0, p), buf.subarray(p)]);
          if (got(o) !== want) expect([p, got(o)]).toEqual([p, want]);
          if (o.maxRetained > LIMITS.maxStanzaBytes + SLACK) checkInvariants(o);
        }
        if (buf.length <= 1000) {
          const o = run(Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1)));
          checkInvariants(o);
          expect(got(o)).toBe(want);
        }
      });
    }), 250);
  });

  it('survives mutated, truncated and hostile streams: stanzas or one stream error, bounded memory and time', () => {
    check(fc.property(streamBody(LIMITS, { header: true }), fc.boolean(), ({ body, cuts }, end) => {
      timed(() => {
        const whole = run([body], end);
        const chunked = run(split(body, cuts), end);
        checkInvariants(whole);
        checkInvariants(chunked);
        // Both fail or neither. Which error is reported
        // first may differ when the input holds several (UTF-8 is validated per chunk before it
        // is tokenised, and the size limit is checked per piece), so only its kind is checked.
        // Stanzas before an error in the same chunk are not emitted when that chunk fails UTF-8
        // validation, so with an error one list is a prefix of the other.
        expect(chunked.errors.length).toBe(whole.errors.length);
        if (whole.errors.length === 0) expect(chunked.els).toEqual(whole.els);
        else {
          const [short, long] = chunked.els.length <= whole.els.length ? [chunked.els, whole.els] : [whole.els, chunked.els];
          expect(long.slice(0, short.length)).toEqual(short);
        }
        for (const e of [...whole.errors, ...chunked.errors]) expect(PARSER_CONDITIONS).toContain(e.condition);
      });
    }), 3000);
  });

  it('refuses every pathological shape over a limit with a stream error, never by throwing', () => {
    check(fc.property(pathological(LIMITS), fc.array(fc.nat(), { maxLength: 6 }), (piece, cuts) => {
      const buf = Buffer.from(HEADER + piece);
      const o = timed(() => run(split(buf, cuts.map((c) => c % buf.length))));
      checkInvariants(o);
      const err = o.errors[0]?.condition;
      if (piece.includes('<!')) expect(err).toBeDefined();
      if (/&lol\d*;|&xxe;/.test(piece)) expect(err).toBeDefined();
      if (Buffer.byteLength(piece) > LIMITS.maxStanzaBytes + 50 && piece.startsWith('<message')) expect(err).toBe('policy-violation');
    }), 600);
  });
});
