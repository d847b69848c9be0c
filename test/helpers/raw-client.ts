import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * A bare TCP (or TLS) socket that sends whatever bytes a test wants and collects what the
 * server answers as text: for malformed input, where no client library would go.
 */
export class RawClient {
  text = '';
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.text += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => { /* close follows */ });
  }

  static connect(port: number, opts: { tls?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => resolve(new RawClient(socket)))
        : connect({ port, host: '127.0.0.1' }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Opens a client stream to `domain`. */
  open(domain = 'localhost'): void {
    this.send(`<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
  }

  /** Resolves when the received text matches; rejects after the timeout with what arrived. */
  async waitFor(re: RegExp, timeoutMs = 5000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      if (this.closed) throw new Error(`connection closed before ${re} arrived; got: ${this.text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got: ${this.text}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open; got: ${this.text}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** PLAIN login up to the restarted stream's features (tests with c2s.requireTls false); returns those features. */
  async authenticate(user: string, password: string, domain = 'localhost'): Promise<string> {
    this.open(domain);
    await this.waitFor(/<\/stream:features>/);
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.waitFor(/<success/);
    this.text = '';
    this.open(domain);
    const features = (await this.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    this.text = '';
    return features;
  }

  /** PLAIN login and bind (tests with c2s.requireTls false); returns the bound JID. */
  async login(user: string, password: string, resource = 'raw', domain = 'localhost'): Promise<string> {
    await this.authenticate(user, password, domain);
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const m = await this.waitFor(/<jid>([^<]+)<\/jid>/);
    this.text = '';
    return m[1]!;
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
