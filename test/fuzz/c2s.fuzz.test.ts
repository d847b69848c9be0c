// Fuzzing the whole c2s pipeline over real sockets: a real server on loopback (no TLS), fed
// random, mutated and truncated XML before and after login, in random chunks. Every case must
// end with the server closing the stream cleanly or with a known stream error (never
// internal-server-error, which means an exception escaped), within a bounded time; the server
// keeps answering a steady client throughout and forgets every fuzzed connection.
//
// CI: fixed seed, a few hundred cases. XMPPD_FUZZ_RUNS / XMPPD_FUZZ_SEED for long runs.
import fc from 'fast-check';
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';
import { runs, seed, split, streamBody } from './generators';

const LIMITS = { maxStanzaBytes: 10000, maxDepth: 8, maxAttributes: 16 };
const CASE_MS = 8000;
const LONG = Number(process.env.XMPPD_FUZZ_RUNS) > 0;

/** RFC 6120 §4.9.3 conditions a fuzzed stream may legitimately end with. */
const ALLOWED = new Set([
  'bad-format', 'bad-namespace-prefix', 'host-unknown', 'invalid-from', 'invalid-namespace', 'not-authorized', 'not-well-formed',
  'policy-violation', 'restricted-xml', 'unsupported-encoding', 'unsupported-stanza-type', 'unsupported-version', 'undefined-condition',
  'connection-timeout',
]);

describe('c2s fuzz over real sockets', () => {
  jest.setTimeout(LONG ? 24 * 3600_000 : 120_000);
  let t: TestServer;
  let steady: RawClient;

  beforeAll(async () => {
    t = await startTestServer({
      c2s: { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false },
      limits: { ...LIMITS, maxConnectionsPerAddress: 1000 },
      sessions: { resumeTimeout: 0 },
    }, { 'fuzz@localhost': 'fuzzpass', 'steady@localhost': 'steadypass' });
    steady = await RawClient.connect(t.port);
    await steady.login('steady', 'steadypass', 'steady');
  });
  afterAll(async () => {
    steady?.close();
    await t?.stop();
  });

  let pings = 0;
  async function healthy(): Promise<void> {
    const id = `health${++pings}`;
    steady.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await steady.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*type="result"|<iq [^>]*type="result"[^>]*id="${id}"`), 5000);
  }

  it('ends every fuzzed stream with stanzas handled or a known stream error, and keeps serving', async () => {
    let cases = 0;
    const conditions = new Map<string, number>();
    const prop = fc.asyncProperty(
      fc.boolean(),
      fc.boolean(),
      fc.oneof(streamBody(LIMITS, { header: true }), streamBody(LIMITS)),
      async (afterLogin, slow, { body, cuts }) => {
        cases++;
        const raw = await RawClient.connect(t.port);
        try {
          if (afterLogin) await raw.login('fuzz', 'fuzzpass', `r${cases}`);
          else if (body.length > 0 && body[0] !== 0x3c) raw.open(); // a body without a header gets a valid one
          for (const chunk of split(body, cuts)) {
            raw.send(chunk);
            if (slow) await new Promise((r) => setImmediate(r));
          }
          raw.socket.end();
          await raw.waitClosed(CASE_MS);
          const text = raw.text;
          expect(text).not.toContain('internal-server-error');
          const m = /<stream:error><([a-z-]+) xmlns="urn:ietf:params:xml:ns:xmpp-streams"/.exec(text);
          if (m) {
            expect(ALLOWED).toContain(m[1]);
            conditions.set(m[1]!, (conditions.get(m[1]!) ?? 0) + 1);
          }
          // The server finishes its side of every stream it opened.
          if (text.includes('<stream:stream')) expect(text.trimEnd().endsWith('</stream:stream>')).toBe(true);
        } finally {
          raw.close();
        }
        if (cases % 50 === 0) await healthy();
      },
    );
    const r = await fc.check(prop, { seed: seed(), numRuns: runs(500), endOnFailure: true });
    if (r.failed) {
      const msg = `${String(r.errorInstance).slice(0, 1500)}\n${fc.defaultReportMessage(r) ?? ''}`;
      throw new Error(msg.length > 5000 ? msg.slice(0, 3000) + '\n…\n' + msg.slice(-1500) : msg);
    }
    if (process.env.XMPPD_FUZZ_REPORT) console.log({ cases, conditions: Object.fromEntries(conditions) });
    await healthy();
    // Every fuzzed connection is gone: only the steady client is left.
    for (let i = 0; i < 100 && t.server.connectionCount > 1; i++) await new Promise((res) => setTimeout(res, 50));
    expect(t.server.connectionCount).toBe(1);
    expect(t.server.core.sessions.ofAccount('fuzz@localhost')).toHaveLength(0);
    // Most cases end in an error; the mix shows the generators reach the conditions they aim at.
    expect(conditions.size).toBeGreaterThanOrEqual(5);
  });
});
