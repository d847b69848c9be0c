// Overload limits over real sockets: total connections, the per-connection byte shaper, the
// per-session stanza rate, slow headers (slowloris), login throttling and the offline queue.
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';

const PLAIN = { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false };
const USERS = { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('limits.maxConnections', () => {
  let t: TestServer;
  beforeAll(async () => { t = await startTestServer({ c2s: PLAIN, limits: { maxConnections: 3 } }, USERS); });
  afterAll(() => t.stop());

  it('refuses connections beyond the total with resource-constraint, and admits again once one closes', async () => {
    const open = await Promise.all([1, 2, 3].map(() => RawClient.connect(t.port)));
    for (const c of open) {
      c.open();
      await c.waitFor(/<\/stream:features>/);
    }
    const extra = await RawClient.connect(t.port);
    extra.open();
    await extra.waitFor(/<stream:error><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await extra.waitClosed();
    open[0]!.close();
    for (let i = 0; i < 100 && t.server.connectionCount >= 3; i++) await sleep(20);
    const again = await RawClient.connect(t.port);
    again.open();
    await again.waitFor(/<\/stream:features>/);
    for (const c of [...open, again]) c.close();
  });
});

describe('limits.bytesPerSecond (read shaping)', () => {
  it('delays a connection sending faster than the rate, and loses nothing', async () => {
    const t = await startTestServer({ c2s: PLAIN, limits: { bytesPerSecond: 40000, burstBytes: 40000 } }, USERS);
    try {
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'wonderland', 'fast');
      const body = 'y'.repeat(9000);
      const started = Date.now();
      // 16 × ~9 KB ≈ 145 KB: the first 40 KB pass at once, the rest at 40 KB/s (≈ 2.6 s).
      for (let i = 0; i < 16; i++) alice.send(`<message to='alice@localhost/fast' id='m${i}'><body>${body}</body></message>`);
      await alice.waitFor(/id="m15"/, 15000);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThan(2000);
      for (let i = 0; i < 16; i++) expect(alice.text).toContain(`id="m${i}"`);
      expect(alice.closed).toBe(false);
      alice.close();
    } finally {
      await t.stop();
    }
  });

  it('lets a 256 KiB stanza through promptly with the default limits', async () => {
    const t = await startTestServer({ c2s: PLAIN }, USERS);
    try {
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'wonderland', 'big');
      const body = 'z'.repeat(256 * 1024 - 200);
      const started = Date.now();
      alice.send(`<message to='alice@localhost/big' id='big'><body>${body}</body></message>`);
      await alice.waitFor(/id="big"[^>]*>.*<\/message>/s, 5000);
      expect(Date.now() - started).toBeLessThan(2000);
      alice.close();
    } finally {
      await t.stop();
    }
  });
});

describe('limits.stanzasPerSecond', () => {
  it('slows a flooding session down instead of cutting it off, and handles every stanza in order', async () => {
    const t = await startTestServer({ c2s: PLAIN, limits: { stanzasPerSecond: 20, stanzaBurst: 20 } }, USERS);
    try {
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'wonderland', 'flood');
      const started = Date.now();
      let burst = '';
      for (let i = 0; i < 60; i++) burst += `<iq type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;
      alice.send(burst);
      await alice.waitFor(/id="p59"/, 15000);
      // 20 at once, then 40 at 20/s ≈ 2 s.
      expect(Date.now() - started).toBeGreaterThan(1500);
      const ids = [...alice.text.matchAll(/id="p(\d+)"/g)].map((m) => Number(m[1]));
      expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => i));
      expect(alice.closed).toBe(false);
      alice.close();
    } finally {
      await t.stop();
    }
  });
});

describe('slow and failing clients', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ c2s: PLAIN, limits: { authTimeout: 2 }, auth: { failureDelayMs: 300, maxFailureDelayMs: 5000 } }, USERS);
  });
  afterAll(() => t.stop());

  it('cuts a client dribbling its stream header byte by byte at the auth timeout (slowloris)', async () => {
    const raw = await RawClient.connect(t.port);
    const header = `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;
    const started = Date.now();
    let stop = false;
    const dribble = (async () => {
      for (const ch of header) {
        if (stop || raw.closed) return;
        raw.send(ch);
        await sleep(100);
      }
    })();
    await raw.waitFor(/<connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/, 8000);
    await raw.waitClosed();
    stop = true;
    await dribble;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(6000); // the header alone would take ~14 s
  });

  it('answers repeated wrong passwords later and later', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open('localhost');
    await raw.waitFor(/<\/stream:features>/);
    const times: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const t0 = Date.now();
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0bob\0wrong').toString('base64')}</auth>`);
      await raw.waitFor(new RegExp(`(?:<not-authorized/>.*){${i}}`, 's'), 10000);
      times.push(Date.now() - t0);
    }
    expect(times[0]).toBeGreaterThanOrEqual(250);
    expect(times[2]!).toBeGreaterThan(times[0]! * 2);
    raw.close();
  });
});

describe('offline queue per user over sockets', () => {
  it('stores up to modules.offline.maxMessages and refuses further ones with an error to the sender', async () => {
    const t = await startTestServer({ c2s: PLAIN, modules: { offline: { maxMessages: 2 } } }, USERS);
    try {
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'wonderland', 'q');
      for (let i = 1; i <= 3; i++) alice.send(`<message to='bob@localhost' type='chat' id='o${i}'><body>${i}</body></message>`);
      await alice.waitFor(/<message [^>]*id="o3"[^>]*type="error"|<message [^>]*type="error"[^>]*id="o3"/);
      expect(alice.text).not.toMatch(/id="o[12]"/);
      alice.close();
      const bob = await RawClient.connect(t.port);
      await bob.login('bob', 'builder', 'home');
      bob.send('<presence/>');
      await bob.waitFor(/<body>2<\/body>/);
      expect(bob.text).toContain('<body>1</body>');
      expect(bob.text).not.toContain('<body>3</body>');
      bob.close();
    } finally {
      await t.stop();
    }
  });
});
