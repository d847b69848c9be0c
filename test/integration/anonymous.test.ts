// Guest logins (SASL ANONYMOUS) on a domain of their own, off by default.
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';
import { buildConfig } from '../../src/config';

describe('anonymous guest domain', () => {
  let t: TestServer;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    t = await startTestServer({ c2s: { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false }, anonymousDomains: ['guest.localhost'] },
      { 'alice@localhost': 'a' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await t.stop();
  });
  const connect = async () => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    return c;
  };

  it('offers only ANONYMOUS there, gives each guest a fresh address, and lets guests chat', async () => {
    const guest = await connect();
    guest.open('guest.localhost');
    const features = (await guest.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    expect(features).toContain('<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>ANONYMOUS</mechanism></mechanisms>');
    guest.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>${Buffer.from('visitor').toString('base64')}</auth>`);
    await guest.waitFor(/<success/);
    guest.text = '';
    guest.open('guest.localhost');
    await guest.waitFor(/<\/stream:features>/);
    guest.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    const jid = (await guest.waitFor(/<jid>([^<]+)<\/jid>/))[1]!;
    expect(jid).toMatch(/^[0-9a-f]{18}@guest\.localhost\/.+$/);

    const alice = await connect();
    await alice.login('alice', 'a', 'desk');
    guest.send(`<message to='alice@localhost/desk' type='chat'><body>hello from a guest</body></message>`);
    await alice.waitFor(new RegExp(`from="${jid.replace(/\./g, '\\.')}"[^>]*>.*hello from a guest`, 's'));
    alice.send(`<message to='${jid}' type='chat'><body>welcome</body></message>`);
    await guest.waitFor(/welcome<\/body>/);

    // Guest data goes with the session.
    guest.send(`<iq type='set' id='p1'><query xmlns='jabber:iq:private'><note xmlns='urn:example:note'>x</note></query></iq>`);
    await guest.waitFor(/<iq type="result" id="p1"/);
    guest.send('</stream:stream>');
    await guest.waitClosed();
    const bare = jid.slice(0, jid.indexOf('/'));
    const stored = () => (t.server.core.db.prepare('SELECT count(*) AS n FROM private_xml WHERE account = ?').get(bare) as { n: number }).n;
    for (let i = 0; i < 50 && stored() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(stored()).toBe(0);
  });

  it('keeps ANONYMOUS off the account domains, and accounts off the guest domain', async () => {
    const c = await connect();
    c.open('localhost');
    const features = (await c.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    expect(features).not.toContain('ANONYMOUS');
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>`);
    await c.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-mechanism\/>/);
    await expect(t.server.core.createUser('bob@guest.localhost', 'x')).rejects.toThrow('guest.localhost is not a domain of this server');
  });

  it('refuses a guest domain that is also an account domain', () => {
    expect(() => buildConfig({ domains: ['a.example'], anonymousDomains: ['a.example'] }, '/x')).toThrow('a domain is either for accounts or for guests');
  });
});
