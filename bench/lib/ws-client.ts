/**
 * A minimal XMPP-over-WebSocket client (RFC 7395) for the load generator, with the same
 * surface as XmppConnection after login (send, onStanza with raw bytes, close): every
 * WebSocket message is one element; <open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing
 * stand for the stream header and footer. Subprotocol "xmpp", no permessage-deflate.
 * Writes made in one tick are sent as they come (one WebSocket frame per element: the
 * framing requires it).
 */
import WebSocket from 'ws';
import { XmppError, type Mechanism, type ScramCache } from './client';
import { HandshakeConnection } from './handshake';

const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export interface WsLoginOptions {
  url: string;
  domain: string;
  localAddress?: string;
  user: string;
  password: string;
  resource: string;
  mechanism: Mechanism;
  scramCache?: ScramCache;
  timeoutMs?: number;
}

/** Adds xmlns='jabber:client' to the top element when its start tag has no xmlns. */
export function qualify(data: string): string {
  const gt = data.indexOf('>');
  const head = gt < 0 ? data : data.slice(0, gt);
  if (head.includes('xmlns=')) return data;
  const sp = data.search(/[\s/>]/);
  return sp > 0 ? `${data.slice(0, sp)} xmlns='jabber:client'${data.slice(sp)}` : data;
}

export class WsConnection extends HandshakeConnection {
  private readonly closedP: Promise<void>;
  onStanza: ((buf: Buffer, start: number, end: number) => void) | undefined;
  closed = false;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer) => {
      if (this.onStanza) this.onStanza(data, 0, data.length);
      else this.deliver(data.toString('utf8'));
    });
    this.closedP = new Promise((resolve) => {
      ws.on('close', () => {
        this.closed = true;
        this.fail(new XmppError('websocket closed'));
        resolve();
      });
    });
    ws.on('error', (err) => this.fail(err));
  }

  static connect(url: string, localAddress?: string): Promise<WsConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'xmpp', { perMessageDeflate: false, localAddress });
      ws.once('error', reject);
      ws.once('open', () => {
        ws.off('error', reject);
        resolve(new WsConnection(ws));
      });
    });
  }

  /**
   * Sends one element as one WebSocket message. RFC 7395 §3.3.3: every element is a standalone
   * document, so a stanza without its own xmlns gets xmlns='jabber:client' (Prosody drops
   * unqualified stanzas; the scenarios write them as over TCP, where the stream sets it).
   */
  override send(data: string | Buffer): boolean {
    this.ws.send(qualify(data.toString()));
    return true;
  }

  /** <open/>, then the server's <open/> and features; returns the features. */
  async openStream(domain: string): Promise<string> {
    this.send(`<open xmlns='${NS_FRAMING}' to='${domain}' version='1.0'/>`);
    let s = await this.expect('open');
    if (s.startsWith('<open')) s = await this.expect('stream features');
    if (!/^<(stream:)?features/.test(s)) throw new XmppError(`expected stream features, got ${s.slice(0, 200)}`);
    return s;
  }

  /** Sends <close/> and closes the WebSocket; resolves when closed (terminated after timeoutMs). */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.onStanza = () => {};
    try {
      this.ws.send(`<close xmlns='${NS_FRAMING}'/>`);
      this.ws.close(1000);
    } catch {
      /* closing */
    }
    const t = setTimeout(() => this.ws.terminate(), timeoutMs);
    await this.closedP;
    clearTimeout(t);
  }

  destroy(): void {
    this.ws.terminate();
  }
}

export async function wsLogin(o: WsLoginOptions): Promise<WsConnection> {
  const conn = await WsConnection.connect(o.url, o.localAddress);
  const timer = setTimeout(() => conn.destroy(), o.timeoutMs ?? 30000);
  try {
    await conn.openStream(o.domain);
    await conn.authenticate(o.user, o.password, o.mechanism, o.scramCache);
    const features = await conn.openStream(o.domain);
    await conn.bind(o.resource, features);
    return conn;
  } catch (err) {
    conn.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
