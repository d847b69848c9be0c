// Replays test/corpus/bad-input/*.xml over real sockets and checks each ends as its .expect
// file says (see the corpus README), while a steady client keeps being served.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';

const DIR = join(__dirname, '..', 'corpus', 'bad-input');

interface Case { name: string; phase: 'connect' | 'open' | 'auth' | 'login'; kind: 'stream-error' | 'stanza-error'; condition: string; input: Buffer }

function loadCorpus(): Case[] {
  return readdirSync(DIR).filter((f) => f.endsWith('.xml')).sort().map((f) => {
    const name = f.slice(0, -4);
    const expect = Object.fromEntries(readFileSync(join(DIR, name + '.expect'), 'utf8').split('\n').filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]));
    const [kind, condition] = (expect.expect ?? '').split(/\s+/);
    if (!['connect', 'open', 'auth', 'login'].includes(expect.phase ?? '')) throw new Error(`${name}.expect: bad phase ${expect.phase}`);
    if ((kind !== 'stream-error' && kind !== 'stanza-error') || !condition) throw new Error(`${name}.expect: bad expect ${expect.expect}`);
    return { name, phase: expect.phase as Case['phase'], kind, condition, input: readFileSync(join(DIR, f)) };
  });
}

const corpus = loadCorpus();

describe('known-bad input corpus over real sockets', () => {
  let t: TestServer;
  let steady: RawClient;
  beforeAll(async () => {
    t = await startTestServer({
      c2s: { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false },
      limits: { maxStanzaBytes: 10000 },
    }, { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
    steady = await RawClient.connect(t.port);
    await steady.login('bob', 'builder', 'steady');
  });
  afterAll(async () => {
    steady.close();
    await t.stop();
  });

  it('has at least 15 cases', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(15);
  });

  it.each(corpus.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const raw = await RawClient.connect(t.port);
    try {
      if (c.phase === 'open') {
        raw.open();
        await raw.waitFor(/<\/stream:features>/);
      } else if (c.phase === 'auth') {
        await raw.authenticate('alice', 'wonderland');
      } else if (c.phase === 'login') {
        await raw.login('alice', 'wonderland', 'corpus');
      }
      raw.send(c.input);
      if (c.kind === 'stream-error') {
        await raw.waitFor(new RegExp(`<stream:error><${c.condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`));
        await raw.waitFor(/<\/stream:stream>/);
        await raw.waitClosed();
        expect(raw.text).not.toContain('internal-server-error');
      } else {
        await raw.waitFor(new RegExp(`<error type="[a-z]+">(?:<[^>]+>)*?<${c.condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>`));
        // A stanza error leaves the stream up.
        raw.send(`<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
        await raw.waitFor(/<iq [^>]*id="after"/);
        expect(raw.closed).toBe(false);
      }
    } finally {
      raw.close();
    }
    // The server keeps serving everyone else.
    steady.text = '';
    steady.send(`<iq type='get' id='ok-${c.name}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await steady.waitFor(new RegExp(`id="ok-${c.name}"`));
  });
});
