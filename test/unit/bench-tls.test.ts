import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, offersStartTls } from '../../bench/lib/client';
import { benchCertificate, type BenchCert } from '../../bench/peers/cert';
import { tlsOn } from '../../bench/scenarios/idle';
import { SCENARIOS } from '../../bench/scenarios';

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";
const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const MECHS = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>";

describe('STARTTLS parsing', () => {
  it('finds starttls in the tls namespace only', () => {
    expect(offersStartTls(`<stream:features>${STARTTLS}${MECHS}</stream:features>`)).toBe(true);
    expect(offersStartTls(`<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls></stream:features>`)).toBe(true);
    expect(offersStartTls(`<stream:features>${MECHS}</stream:features>`)).toBe(false);
    expect(offersStartTls(`<stream:features><starttls xmlns='urn:example'/></stream:features>`)).toBe(false);
  });
  it('idle --tls is on or off, and on asks the servers for the tls feature', () => {
    expect(tlsOn(() => 'on')).toBe(true);
    expect(tlsOn(() => 'OFF')).toBe(false);
    expect(() => tlsOn(() => 'yes')).toThrow(/--tls must be on or off/);
    const idle = SCENARIOS.idle!;
    expect(idle.options.tls?.default).toBe('off');
    expect(idle.features?.((n) => (n === 'tls' ? 'on' : (idle.options[n]?.default ?? '')))).toEqual({ tls: true });
    expect(idle.features?.((n) => idle.options[n]?.default ?? '')).toEqual({});
  });
});

/**
 * A scripted server: stream features (with STARTTLS when `offerTls`), <proceed/> then TLS on the
 * same socket, PLAIN success, bind. Records what arrived in plaintext.
 */
function fakeServer(cert: BenchCert, offerTls: boolean): Promise<{ server: Server; port: number; plain: string[] }> {
  const context = createSecureContext({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) });
  const plain: string[] = [];
  const server = createServer((tcp: Socket) => {
    let authed = false;
    const serve = (sock: Socket, secure: boolean) => {
      const onData = (chunk: Buffer) => {
        const s = chunk.toString();
        if (!secure) plain.push(s);
        if (s.includes('<stream:stream')) {
          const features = authed ? "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" : `${offerTls && !secure ? STARTTLS : ''}${MECHS}`;
          sock.write(`${HEADER}<stream:features>${features}</stream:features>`);
        } else if (s.includes('<starttls')) {
          sock.off('data', onData);
          sock.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
          serve(new TLSSocket(sock, { isServer: true, secureContext: context }), true);
        } else if (s.includes('<auth')) {
          authed = true;
          sock.write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        } else if (s.includes('<bind')) {
          sock.write("<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u0@localhost/r</jid></bind></iq>");
        } else if (s.includes('</stream:stream>')) {
          sock.end('</stream:stream>');
        }
      };
      sock.on('data', onData);
      sock.on('error', () => {});
    };
    serve(tcp, false);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, plain })));
}

describe('STARTTLS login', () => {
  let dir: string;
  let cert: BenchCert;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-tls-'));
    cert = benchCertificate(dir, () => {});
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const opts = (port: number, tls: boolean) => ({ host: '127.0.0.1', port, domain: 'localhost', user: 'u0', password: 'p', resource: 'r', mechanism: 'PLAIN' as const, tls, timeoutMs: 5000 });

  it('makes one certificate per folder (reused on the next call)', () => {
    expect(benchCertificate(dir, () => {})).toEqual(cert);
    expect(readFileSync(cert.pemFile, 'utf8')).toMatch(/BEGIN CERTIFICATE[\s\S]*BEGIN PRIVATE KEY/);
  });

  it('upgrades to TLS 1.3 before SASL and logs in on the TLS socket', async () => {
    const { server, port, plain } = await fakeServer(cert, true);
    try {
      const conn = await login(opts(port, true));
      expect(conn.jid).toBe('u0@localhost/r');
      expect(conn.tlsSummary()).toMatch(/^TLSv1\.3 TLS_\w+ .*, certificate [0-9A-F:]+\.\.\.$/);
      // Nothing but the stream header and <starttls/> went in plaintext.
      expect(plain.join('')).not.toMatch(/<auth|<iq/);
      await conn.close(2000);
    } finally {
      server.close();
    }
  });

  it('stays plaintext without the option, and fails clearly when STARTTLS is not offered', async () => {
    const { server, port, plain } = await fakeServer(cert, false);
    try {
      const conn = await login(opts(port, false));
      expect(conn.tlsSummary()).toBe('');
      expect(plain.join('')).toMatch(/<auth/);
      await conn.close(2000);
      await expect(login(opts(port, true))).rejects.toThrow(/offers no STARTTLS/);
    } finally {
      server.close();
    }
  });
});
