/**
 * A minimal XMPP-over-WebSocket client (RFC 7395) for the load generator, with the same
 * surface as XmppConnection after login (send, onStanza with raw bytes, close): every
 * WebSocket message is one element; <open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing
 * stand for the stream header and footer. Subprotocol "xmpp", no permessage-deflate.
 * Writes made in one tick are sent as they come (one WebSocket frame per element: the
 * framing requires it).
 */
import WebSocket from 'ws';
import { ScramClient, XmppError, escapeXml, textOf, type Mechanism, type ScramCache } from './client';

const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

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

export class WsConnection {
  private queue: string[] = [];
  private waiter: { resolve: (s: string) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly closedP: Promise<void>;
  onStanza: ((buf: Buffer, start: number, end: number) => void) | undefined;
  jid = '';
  closed = false;

  private constructor(readonly ws: WebSocket) {
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

  private deliver(s: string): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(s);
    } else this.queue.push(s);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.reject(err);
    }
  }

  next(): Promise<string> {
    const s = this.queue.shift();
    if (s !== undefined) return Promise.resolve(s);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async expect(what: string): Promise<string> {
    const s = await this.next();
    if (/^<(stream:)?error/.test(s)) throw new XmppError(`stream error while waiting for ${what}: ${s}`);
    return s;
  }

  /**
   * Sends one element as one WebSocket message. RFC 7395 §3.3.3: every element is a standalone
   * document, so a stanza without its own xmlns gets xmlns='jabber:client' (Prosody drops
   * unqualified stanzas; the scenarios write them as over TCP, where the stream sets it).
   */
  send(data: string): boolean {
    this.ws.send(qualify(data));
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

  async authenticate(user: string, password: string, mechanism: Mechanism, cache?: ScramCache): Promise<void> {
    if (mechanism === 'PLAIN') {
      this.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from(`\u0000${user}\u0000${password}`).toString('base64')}</auth>`);
      const r = await this.expect('SASL result');
      if (!r.startsWith('<success')) throw new XmppError(`PLAIN login of ${user} failed: ${r}`);
      return;
    }
    const scram = new ScramClient(user, password, cache);
    this.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
    const ch = await this.expect('SASL challenge');
    if (!ch.startsWith('<challenge')) throw new XmppError(`SCRAM login of ${user} failed: ${ch}`);
    this.send(`<response xmlns='${NS_SASL}'>${Buffer.from(scram.final(Buffer.from(textOf(ch), 'base64').toString())).toString('base64')}</response>`);
    let r = await this.expect('SASL result');
    if (r.startsWith('<challenge')) {
      scram.verify(Buffer.from(textOf(r), 'base64').toString());
      this.send(`<response xmlns='${NS_SASL}'/>`);
      r = await this.expect('SASL result');
      if (!r.startsWith('<success')) throw new XmppError(`SCRAM login of ${user} failed: ${r}`);
    } else if (r.startsWith('<success')) scram.verify(Buffer.from(textOf(r), 'base64').toString());
    else throw new XmppError(`SCRAM login of ${user} failed: ${r}`);
  }

  async bind(resource: string, features: string): Promise<string> {
    this.send(`<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${escapeXml(resource)}</resource></bind></iq>`);
    const r = await this.expect('bind result');
    const m = /<jid>([^<]+)<\/jid>/.exec(r);
    if (!/type=['"]result['"]/.test(r) || !m) throw new XmppError(`bind failed: ${r}`);
    this.jid = m[1]!;
    const sess = /<session xmlns=['"]urn:ietf:params:xml:ns:xmpp-session['"](\s*\/>|>(.*?)<\/session>)/.exec(features);
    if (sess && !(sess[2] ?? '').includes('optional')) {
      this.send(`<iq type='set' id='s1' xmlns='jabber:client'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
      const s = await this.expect('session result');
      if (!/type=['"]result['"]/.test(s)) throw new XmppError(`session failed: ${s}`);
    }
    return this.jid;
  }

  async ping(id = 'ping'): Promise<void> {
    this.send(`<iq type='get' id='${id}' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`);
    for (;;) {
      const s = await this.expect('ping result');
      if (s.startsWith('<iq') && (s.includes(`id='${id}'`) || s.includes(`id="${id}"`))) return;
    }
  }

  drain(): void {
    this.queue = [];
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
