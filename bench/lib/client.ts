/**
 * A minimal XMPP client for the load generator: a raw TCP socket, the StanzaReader, and just
 * enough of the protocol to log in (stream open, optionally STARTTLS, SASL PLAIN or SCRAM-SHA-1,
 * resource binding, the optional legacy session), send presence and messages, and close.
 *
 * The handshake reads stanzas as strings (cheap at that size); after login the caller gets raw
 * stanza bytes through `onStanza` and reads the attributes it needs with attr()/attrRange().
 *
 * SCRAM-SHA-1 keeps a cache of the derived keys per (user, salt, iterations), as mobile clients
 * do (Conversations stores the ClientKey/ServerKey instead of deriving them on every login):
 * the client's PBKDF2 then costs nothing after the first login of each account, so the load
 * generator spends its CPU on the traffic, not on key derivation. The server's side is not
 * affected: a SCRAM server never runs PBKDF2 at login (it stores StoredKey/ServerKey), while a
 * PLAIN login makes it run PBKDF2 with the stored iteration count.
 *
 * STARTTLS (RFC 6120 §5, option `tls`) swaps the TCP socket for a TLS socket on top of it after
 * <proceed/>; the reader, the corked writes and onStanza stay the same (they use whichever
 * socket is current), and a plaintext connection never touches node:tls.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { StanzaReader } from './reader';
import { HandshakeConnection } from './handshake';

export type Mechanism = 'PLAIN' | 'SCRAM-SHA-1';

export interface ConnectOptions {
  host: string;
  port: number;
  /** Source address (127.0.0.x) to spread connections over several addresses' port ranges. */
  localAddress?: string;
  /** The XMPP domain (stream 'to'). */
  domain: string;
  /** Milliseconds for the whole connect + login; default 30 s. */
  timeoutMs?: number;
  /** STARTTLS before SASL (login only). */
  tls?: boolean;
}

export interface LoginOptions extends ConnectOptions {
  user: string;
  password: string;
  resource: string;
  mechanism: Mechanism;
  scramCache?: ScramCache;
}

export class XmppError extends Error {}

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

/**
 * The TLS version the generator insists on: the same for every server (all three negotiate
 * 1.3), so that the handshake and record costs compared are those of one protocol.
 */
export const BENCH_TLS_VERSION = 'TLSv1.3' as const;

/** Whether stream features offer STARTTLS (<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>). */
export function offersStartTls(features: string): boolean {
  return /<starttls\s[^>]*xmlns=(['"])urn:ietf:params:xml:ns:xmpp-tls\1/.test(features);
}

export function streamHeader(domain: string): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='${domain}' version='1.0'>`;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

// ---- SCRAM-SHA-1 (RFC 5802) -------------------------------------------------------------

export interface ScramKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** Derived keys per user+salt+iterations, like a client that stores them instead of the password. */
export class ScramCache {
  private readonly map = new Map<string, ScramKeys>();
  derivations = 0;
  keys(user: string, password: string, salt: Buffer, iterations: number): ScramKeys {
    const k = `${user}\u0000${salt.toString('base64')}\u0000${iterations}`;
    let keys = this.map.get(k);
    if (!keys) {
      keys = deriveScramKeys(password, salt, iterations);
      this.derivations++;
      this.map.set(k, keys);
    }
    return keys;
  }
}

export function deriveScramKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = pbkdf2Sync(password, salt, iterations, 20, 'sha1');
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: createHash('sha1').update(clientKey).digest(), serverKey: hmac(salted, 'Server Key') };
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha1', key).update(data).digest();
}

function saslName(user: string): string {
  return user.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Parses "a=1,b=2" SCRAM attribute lists. */
export function scramAttrs(msg: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

/** Client side of one SCRAM-SHA-1 exchange (no channel binding: gs2 header "n,,"). */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;
  constructor(private readonly user: string, private readonly password: string, private readonly cache?: ScramCache) {
    this.clientFirstBare = `n=${saslName(user)},r=${this.nonce}`;
  }
  first(): string {
    return `n,,${this.clientFirstBare}`;
  }
  final(serverFirst: string): string {
    const a = scramAttrs(serverFirst);
    const r = a.get('r');
    const s = a.get('s');
    const i = Number(a.get('i'));
    if (!r || !r.startsWith(this.nonce) || !s || !(i > 0)) throw new XmppError(`bad SCRAM server-first: ${serverFirst}`);
    const salt = Buffer.from(s, 'base64');
    const keys = this.cache ? this.cache.keys(this.user, this.password, salt, i) : deriveScramKeys(this.password, salt, i);
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = createHmac('sha1', keys.storedKey).update(authMessage).digest();
    const proof = Buffer.allocUnsafe(20);
    for (let k = 0; k < 20; k++) proof[k] = keys.clientKey[k]! ^ clientSignature[k]!;
    this.serverSignature = createHmac('sha1', keys.serverKey).update(authMessage).digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }
  verify(serverFinal: string): void {
    const v = scramAttrs(serverFinal).get('v');
    if (!v || !this.serverSignature || Buffer.from(v, 'base64').compare(this.serverSignature) !== 0) {
      throw new XmppError(`SCRAM server signature mismatch: ${serverFinal}`);
    }
  }
}

// ---- connection -------------------------------------------------------------------------

/**
 * One client connection. During the handshake stanzas are queued and read with next(); after
 * that, set onStanza to get raw bytes.
 */
export class XmppConnection extends HandshakeConnection {
  /** The TCP socket, or after STARTTLS the TLS socket on top of it. */
  socket: Socket;
  private readonly reader: StanzaReader;
  private closedP: Promise<void>;
  private resolveClosed!: () => void;
  /** Raw stanza callback, used once set (the handshake queue is bypassed). */
  onStanza: ((buf: Buffer, start: number, end: number) => void) | undefined;
  onStreamEnd: (() => void) | undefined;
  closed = false;

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    this.reader = new StanzaReader({
      stanza: (buf, start, end) => {
        if (this.onStanza) this.onStanza(buf, start, end);
        else this.deliver(buf.toString('utf8', start, end));
      },
      streamEnd: () => {
        this.onStreamEnd?.();
        this.fail(new XmppError('stream closed by server'));
      },
    });
    this.closedP = new Promise((resolve) => (this.resolveClosed = resolve));
    this.attach(socket);
  }

  private readonly onData = (chunk: Buffer): void => this.reader.push(chunk);
  private readonly onClose = (): void => {
    this.closed = true;
    this.fail(new XmppError('connection closed'));
    this.resolveClosed();
  };
  private readonly onError = (err: Error): void => this.fail(err);

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  static connect(opts: ConnectOptions): Promise<XmppConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress, noDelay: true });
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new XmppConnection(socket));
      });
    });
  }

  /**
   * Writes data. Writes made in the same tick are gathered (cork, then uncork on the next
   * tick: one writev syscall), so that a generator driving hundreds of clients from one
   * process does not spend its CPU on one syscall per stanza.
   */
  override send(data: string | Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    return this.socket.write(data);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Opens (or restarts) the stream and returns the features element. */
  async openStream(domain: string): Promise<string> {
    this.send(streamHeader(domain));
    const features = await this.expect('stream features');
    if (!features.startsWith('<stream:features')) throw new XmppError(`expected stream features, got ${features.slice(0, 200)}`);
    return features;
  }

  /**
   * STARTTLS (RFC 6120 §5.4): asks for TLS, waits for <proceed/>, then runs the TLS handshake
   * on the same TCP connection. The caller restarts the stream afterwards (openStream).
   * The server's certificate is self-signed: not verified (rejectUnauthorized false).
   */
  async startTls(domain: string, features: string): Promise<void> {
    if (!offersStartTls(features)) throw new XmppError(`the server offers no STARTTLS: ${features.slice(0, 300)}`);
    this.send(`<starttls xmlns='${NS_TLS}'/>`);
    const r = await this.expect('STARTTLS answer');
    if (!r.startsWith('<proceed')) throw new XmppError(`STARTTLS refused: ${r}`);
    // From here on the TCP socket carries TLS records: they go to the TLS socket, not the reader.
    // (Nothing follows <proceed/> before our ClientHello, so the reader holds no leftover bytes.)
    const tcp = this.socket;
    tcp.off('data', this.onData);
    const secure = tlsConnect({ socket: tcp, servername: domain, rejectUnauthorized: false, minVersion: BENCH_TLS_VERSION });
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new XmppError('connection closed during the TLS handshake')));
    });
  }

  /**
   * The negotiated TLS version, cipher, key exchange and the start of the server certificate's
   * SHA-256 fingerprint (to see that every server presents the bench certificate), e.g.
   * "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519, certificate 3A:F1:..."; '' without TLS.
   */
  tlsSummary(): string {
    const s = this.socket as Partial<TLSSocket>;
    if (!s.encrypted || !s.getProtocol || !s.getCipher || !s.getPeerCertificate) return '';
    const kx = s.getEphemeralKeyInfo?.();
    const fp = s.getPeerCertificate().fingerprint256 ?? '';
    return `${[s.getProtocol(), s.getCipher().name, kx && 'name' in kx ? kx.name : ''].filter(Boolean).join(' ')}, certificate ${fp.slice(0, 23)}...`;
  }

  /** Sends the stream footer and waits (bounded) for the server to close; then closes the socket. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.onStanza = () => {};
    try {
      this.socket.write('</stream:stream>');
    } catch {
      /* already closed */
    }
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    this.onStreamEnd = () => this.socket.end();
    await this.closedP;
    clearTimeout(timer);
  }

  /**
   * Sends the stream footer and half-closes the socket at once, without waiting for the
   * server's footer (some servers answer it only after a delay: ejabberd about 100 ms);
   * resolves when the connection is fully closed (or destroyed after timeoutMs).
   */
  quickClose(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.onStanza = () => {};
    this.socket.end('</stream:stream>');
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    return this.closedP.then(() => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }

  whenClosed(): Promise<void> {
    return this.closedP;
  }
}

/** Text content of a simple element <x ...>TEXT</x> (or '' for <x/>). */
export function textOf(el: string): string {
  const gt = el.indexOf('>');
  if (gt < 0 || el[gt - 1] === '/') return '';
  const end = el.lastIndexOf('</');
  return end > gt ? el.slice(gt + 1, end) : '';
}

/** Connect, authenticate, restart the stream and bind: a logged-in connection. */
export async function login(opts: LoginOptions): Promise<XmppConnection> {
  const conn = await XmppConnection.connect(opts);
  const timer = setTimeout(() => conn.destroy(), opts.timeoutMs ?? 30000);
  try {
    const preAuth = await conn.openStream(opts.domain);
    if (opts.tls) {
      await conn.startTls(opts.domain, preAuth);
      await conn.openStream(opts.domain);
    }
    await conn.authenticate(opts.user, opts.password, opts.mechanism, opts.scramCache);
    const features = await conn.openStream(opts.domain);
    await conn.bind(opts.resource, features);
    return conn;
  } catch (err) {
    conn.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** In-band registration (XEP-0077) of one account on a fresh pre-auth stream. */
export async function registerAccount(opts: ConnectOptions & { user: string; password: string }): Promise<void> {
  const conn = await XmppConnection.connect(opts);
  const timer = setTimeout(() => conn.destroy(), opts.timeoutMs ?? 30000);
  try {
    await conn.openStream(opts.domain);
    conn.send(
      `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${escapeXml(opts.user)}</username>` +
        `<password>${escapeXml(opts.password)}</password></query></iq>`,
    );
    const r = await conn.expect('registration result');
    if (!/type=['"]result['"]/.test(r) && !r.includes('<conflict')) throw new XmppError(`registration of ${opts.user} failed: ${r}`);
  } catch (err) {
    conn.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  // Leave without waiting for the server's side of the close (ejabberd answers it ~100 ms later).
  void conn.quickClose(2000);
}
