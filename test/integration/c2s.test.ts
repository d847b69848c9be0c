// The client-to-server stream over real sockets: TLS, SASL, binding, stream errors.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient } from '../helpers/xmpp-js';
import { RawClient } from '../helpers/raw-client';

describe('c2s over TCP with TLS', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
  });
  afterAll(() => t.stop());

  it('logs in with STARTTLS and SCRAM through @xmpp/client and binds the requested resource', async () => {
    const c = await jsClient({ port: t.port, username: 'alice', password: 'wonderland', resource: 'laptop' });
    expect(c.jid).toBe('alice@localhost/laptop');
    expect(t.server.core.sessions.get(t.server.core.accountJid('alice@localhost').withResource('laptop'))).toBeDefined();
    await c.stop();
  });

  it('logs in over direct TLS (XEP-0368)', async () => {
    const c = await jsClient({ port: t.tlsPort, username: 'bob', password: 'builder', tls: 'direct' });
    expect(c.jid).toMatch(/^bob@localhost\/.+/);
    await c.stop();
  });

  it('refuses a wrong password with not-authorized', async () => {
    await expect(jsClient({ port: t.port, username: 'alice', password: 'nope' })).rejects.toThrow(/not-authorized/);
  });

  it('requires STARTTLS before authentication by default', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open();
    const features = await raw.waitFor(/<stream:features>.*<\/stream:features>/s);
    expect(features[0]).toContain("<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls>");
    expect(features[0]).not.toContain('mechanisms');
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0wonderland').toString('base64')}</auth>`);
    await raw.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><encryption-required\/>/);
    raw.close();
  });

  it('offers SCRAM with channel binding after TLS and never PLAIN before it', async () => {
    const raw = await RawClient.connect(t.tlsPort, { tls: true });
    raw.open();
    const features = (await raw.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    expect(features).toContain('<mechanism>SCRAM-SHA-256-PLUS</mechanism>');
    expect(features).toContain('<mechanism>SCRAM-SHA-256</mechanism>');
    expect(features).toContain('<mechanism>SCRAM-SHA-1</mechanism>');
    expect(features).toContain('<mechanism>PLAIN</mechanism>');
    expect(features).toContain('<channel-binding type="tls-exporter"/>');
    raw.close();
  });

  it('answers a stream to an unknown domain with host-unknown', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open('elsewhere.example');
    await raw.waitFor(/<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await raw.waitClosed();
  });

  it('answers a wrong stream namespace with invalid-namespace', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send(`<stream:stream to='localhost' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>`);
    await raw.waitFor(/<invalid-namespace xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await raw.waitClosed();
  });

  it('answers malformed XML with not-well-formed and keeps serving other clients', async () => {
    const c = await jsClient({ port: t.port, username: 'bob', password: 'builder', resource: 'steady' });
    const raw = await RawClient.connect(t.port);
    raw.open();
    await raw.waitFor(/<\/stream:features>/);
    raw.send('<message><body>unclosed</mess>');
    await raw.waitFor(/<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await raw.waitFor(/<\/stream:stream>/);
    await raw.waitClosed();
    // The other client still gets answers.
    const pong = await c.iq(c.xml('iq', { type: 'get', to: 'localhost' }, c.xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(pong.attrs.type).toBe('result');
    await c.stop();
  });

  it('rejects a DOCTYPE (restricted XML, RFC 6120 §11) without expanding entities', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">]><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    await raw.waitFor(/<restricted-xml xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await raw.waitClosed();
  });

  it('ends a stanza larger than the limit with policy-violation', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open();
    await raw.waitFor(/<\/stream:features>/);
    raw.send('<message><body>' + 'x'.repeat(300 * 1024));
    await raw.waitFor(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await raw.waitClosed();
  });

  it('tolerates whitespace keepalives between stanzas', async () => {
    const c = await jsClient({ port: t.port, username: 'alice', password: 'wonderland', resource: 'ka' });
    c.xmpp.write('   \n  ');
    const pong = await c.iq(c.xml('iq', { type: 'get', to: 'localhost' }, c.xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(pong.attrs.type).toBe('result');
    await c.stop();
  });

  it('forgets connections once they close, STARTTLS ones included', async () => {
    // Earlier tests may leave unauthenticated connections until their auth timeout: count ours only.
    const before = t.server.connectionCount;
    const clients = await Promise.all([1, 2, 3].map((i) => jsClient({ port: t.port, username: 'bob', password: 'builder', resource: `n${i}` })));
    const direct = await jsClient({ port: t.tlsPort, username: 'bob', password: 'builder', resource: 'direct', tls: 'direct' });
    for (const c of [...clients, direct]) await c.stop();
    // A closed stream stops being routable at once; the sockets follow.
    const ours = ['n1', 'n2', 'n3', 'direct'];
    expect(t.server.core.sessions.ofAccount('bob@localhost').filter((s) => ours.includes(s.jid.resource))).toHaveLength(0);
    for (let i = 0; i < 120 && t.server.connectionCount > before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(t.server.connectionCount).toBeLessThanOrEqual(before);
  });

  it('replaces the old session when the same resource binds again', async () => {
    const first = await jsClient({ port: t.port, username: 'alice', password: 'wonderland', resource: 'dup' });
    const closed = new Promise<string>((resolve) => first.xmpp.on('element', (el: { name: string; toString(): string }) => {
      if (el.name === 'stream:error') resolve(el.toString());
    }));
    const second = await jsClient({ port: t.port, username: 'alice', password: 'wonderland', resource: 'dup' });
    expect(await closed).toContain('<conflict');
    expect(second.jid).toBe('alice@localhost/dup');
    await second.stop();
    await first.stop();
  });
});

describe('c2s limits and addressing on a plaintext loopback server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ c2s: { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false }, limits: { authTimeout: 1 } },
      { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
  });
  afterAll(() => t.stop());

  it('stamps from and refuses a spoofed from with invalid-from', async () => {
    const bob = await RawClient.connect(t.port);
    await bob.login('bob', 'builder', 'desk');
    bob.send(`<presence/>`);
    const alice = await RawClient.connect(t.port);
    await alice.login('alice', 'wonderland', 'phone');
    alice.send(`<message to='bob@localhost/desk' type='chat'><body>hi</body></message>`);
    await bob.waitFor(/<message[^>]*from="alice@localhost\/phone"[^>]*>.*<body>hi<\/body>/s);
    alice.send(`<message from='bob@localhost/desk' to='bob@localhost' type='chat'><body>fake</body></message>`);
    await alice.waitFor(/<invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await alice.waitClosed();
    bob.close();
  });

  it('closes connections that do not authenticate in time with connection-timeout', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open();
    await raw.waitFor(/<connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/, 8000);
    await raw.waitClosed();
  });

  it('answers an IQ to an unknown domain with remote-server-not-found and one nobody handles with service-unavailable', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', 'wonderland', 'r1');
    raw.send(`<iq type='get' id='q1' to='elsewhere.example'><query xmlns='jabber:iq:version'/></iq>`);
    await raw.waitFor(/<iq type="error" id="q1"[^>]*>.*<remote-server-not-found/s);
    raw.send(`<iq type='get' id='q2' to='localhost'><nothing xmlns='urn:example:none'/></iq>`);
    await raw.waitFor(/<iq type="error" id="q2"[^>]*>.*<service-unavailable/s);
    raw.send(`<message to='not a jid@@localhost'><body>x</body></message>`);
    await raw.waitFor(/<jid-malformed/);
    raw.close();
  });

  it('refuses a second SASL attempt after too many failures', async () => {
    const raw = await RawClient.connect(t.port);
    raw.open();
    await raw.waitFor(/<\/stream:features>/);
    for (let i = 0; i < 5; i++) {
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0bad').toString('base64')}</auth>`);
    }
    await raw.waitFor(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    expect(raw.text.match(/<not-authorized\/>/g)?.length).toBe(5);
    await raw.waitClosed();
  });
});
