import type { IncomingMessage } from 'node:http';
import { WebSocket, type ClientOptions } from 'ws';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export interface WsClientOptions {
  /** Subprotocols to offer; default ['xmpp']. */
  protocols?: string[];
  origin?: string;
  headers?: Record<string, string>;
}

/**
 * A bare WebSocket that sends whatever messages a test wants and keeps every message the
 * server sends, for RFC 7395 framing tests where no client library would go.
 */
export class WsClient {
  readonly messages: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(data.toString());
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => { /* close follows */ });
  }

  /** Connects; rejects with the HTTP status when the server refuses the upgrade. */
  static connect(url: string, opts: WsClientOptions = {}): Promise<WsClient> {
    const options: ClientOptions = { headers: opts.headers, rejectUnauthorized: false };
    if (opts.origin !== undefined) options.origin = opts.origin;
    const ws = new WebSocket(url, opts.protocols ?? ['xmpp'], options);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  open(domain = 'localhost'): void {
    this.send(`<open xmlns='${NS_FRAMING}' to='${domain}' version='1.0'/>`);
  }

  /** Resolves with the first message (already received or future) matching `re`; rejects after the timeout with what arrived. */
  async waitFor(re: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.find((s) => re.test(s));
      if (m !== undefined) return m;
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) before ${re} arrived; got:\n${this.messages.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got:\n${this.messages.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open; got:\n${this.messages.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
    return this.closed;
  }

  /** PLAIN login and bind over the framed stream (on a connection that counts as secure); returns the bound JID. */
  async login(user: string, password: string, resource = 'raw', domain = 'localhost'): Promise<string> {
    this.open(domain);
    await this.waitFor(/<\/stream:features>/);
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.waitFor(/<success/);
    this.messages.length = 0;
    this.open(domain);
    await this.waitFor(/<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/);
    this.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const m = /<jid>([^<]+)<\/jid>/.exec(await this.waitFor(/<jid>/));
    this.messages.length = 0;
    return m![1]!;
  }

  close(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
