import { createServer, type Server } from 'node:http';
import type { Core } from '../../src/core';
import { silentLogger } from '../../src/log';
import { AuthThrottle } from '../../src/stream/auth-throttle';
import type { C2sOptions } from '../../src/stream/c2s-session';
import { BoshService, type BoshOptions } from '../../src/net/bosh/service';
import { normaliseAddress } from '../../src/net/tcp-transport';
import { parseXml } from '../../src/xml/parse';
import type { Element } from '../../src/xml/element';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshTestServer {
  service: BoshService;
  http: Server;
  port: number;
  /** http://127.0.0.1:PORT/http-bind */
  url: string;
  close(): Promise<void>;
}

export function testC2sOptions(overrides: Partial<C2sOptions> = {}): C2sOptions {
  return { requireTls: true, authTimeoutMs: 30_000, idleTimeoutMs: 300_000, resumeTimeoutMs: 0, throttle: new AuthThrottle(0, 0), ...overrides };
}

/**
 * A plain node:http server on an ephemeral loopback port that mounts a BoshService at
 * /http-bind, standing in for the real HTTP listener. `secure` is what the listener would
 * pass (true: as for HTTPS, or for a trusted loopback setup).
 */
export async function startBoshServer(core: Core, opts: BoshOptions = {}, extra: { c2s?: Partial<C2sOptions>; secure?: boolean } = {}): Promise<BoshTestServer> {
  const service = new BoshService(core, testC2sOptions(extra.c2s), opts, silentLogger());
  const secure = extra.secure ?? true;
  const http = createServer((req, res) => {
    if (req.url?.split('?')[0] === '/http-bind' || req.url?.split('?')[0] === '/http-bind/') {
      service.handle(req, res, { address: normaliseAddress(req.socket.remoteAddress), secure });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as { port: number }).port;
  return {
    service,
    http,
    port,
    url: `http://127.0.0.1:${port}/http-bind`,
    async close() {
      await service.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

export interface BoshReply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed <body/> (undefined when the response is not XML). */
  body: Element | undefined;
}

/** One HTTP POST of a raw body. */
export async function post(url: string, data: string, headers: Record<string, string> = {}): Promise<BoshReply> {
  const r = await fetch(url, { method: 'POST', body: data, headers: { 'Content-Type': 'text/xml; charset=utf-8', ...headers } });
  const text = await r.text();
  let body: Element | undefined;
  try {
    body = parseXml(text);
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, text, body };
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

/**
 * A hand-written BOSH client: it builds <body/> wrappers with consecutive rids and lets a
 * test send them in any order, repeat them, or leave out attributes.
 */
export class BoshClient {
  rid: number;
  sid = '';
  creation: BoshReply | undefined;

  constructor(readonly url: string, firstRid = 1_000_000 + Math.floor(Math.random() * 1_000_000)) {
    this.rid = firstRid;
  }

  /** The next request's <body/> text; `attrs` are added (undefined drops one), `payload` goes inside. */
  body(attrs: Record<string, string | number | undefined> = {}, payload = '', rid = this.rid++): string {
    const all: Record<string, string | number | undefined> = { rid, xmlns: NS_HTTPBIND, ...attrs };
    if (this.sid && !('sid' in attrs)) all.sid = this.sid;
    let s = '<body';
    for (const [k, v] of Object.entries(all)) if (v !== undefined) s += ` ${k}="${escape(String(v))}"`;
    return payload ? `${s}>${payload}</body>` : `${s}/>`;
  }

  post(data: string): Promise<BoshReply> {
    return post(this.url, data);
  }

  /** Sends the next request (rid + 1). */
  send(payload = '', attrs: Record<string, string | number | undefined> = {}): Promise<BoshReply> {
    return this.post(this.body(attrs, payload));
  }

  /** Session creation request (XEP-0206 §3). */
  async connect(attrs: Record<string, string | number | undefined> = {}): Promise<BoshReply> {
    const r = await this.post(this.body({
      to: 'localhost', 'xml:lang': 'en', ver: '1.11', wait: 60, hold: 1,
      'xmlns:xmpp': NS_XBOSH, 'xmpp:version': '1.0', ...attrs,
    }));
    this.creation = r;
    this.sid = r.body?.attrs.sid ?? '';
    return r;
  }

  /**
   * Logs in with SASL PLAIN (the server must see a secure connection), restarts the stream
   * and binds `resource`. Returns the full JID. Payloads arriving meanwhile are collected
   * in `received`.
   */
  async login(username: string, password: string, resource = 'bosh'): Promise<string> {
    await this.authenticate(username, password);
    const bound = await this.exchange(
      `<iq type="set" id="bind1" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
      (el) => el.name === 'iq' && el.attrs.id === 'bind1',
    );
    const jid = bound.getChild('bind')?.getChildText('jid');
    if (!jid) throw new Error('bind failed: ' + bound.toString());
    return jid;
  }

  /** SASL PLAIN and the stream restart (XEP-0206 §5); resolves with the new stream features. */
  async authenticate(username: string, password: string): Promise<Element> {
    const creds = Buffer.from(`\0${username}\0${password}`).toString('base64');
    const auth = await this.exchange(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${creds}</auth>`, (el) => el.name === 'success' || el.name === 'failure');
    if (auth.name !== 'success') throw new Error('login failed: ' + auth.toString());
    const restart = await this.send('', { to: 'localhost', 'xml:lang': 'en', 'xmlns:xmpp': NS_XBOSH, 'xmpp:restart': 'true' });
    const features = restart.body?.getChild('features');
    if (!features) throw new Error('no features after restart: ' + restart.text);
    return features;
  }

  /** Payloads received by exchange() and poll() that no predicate took. */
  readonly received: Element[] = [];

  /**
   * Sends `payload` and keeps polling (one request at a time) until an element matching
   * `pred` arrives; returns it.
   */
  async exchange(payload: string, pred: (el: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    let r = await this.send(payload);
    for (;;) {
      const found = this.take(r, pred);
      if (found) return found;
      if (r.body?.attrs.type === 'terminate') throw new Error('session terminated: ' + r.text);
      if (Date.now() > deadline) throw new Error('timed out; last response: ' + r.text);
      r = await this.send();
    }
  }

  /** Polls until `pred` matches a payload already received or arriving. */
  async waitFor(pred: (el: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
    const i = this.received.findIndex(pred);
    if (i !== -1) return this.received.splice(i, 1)[0]!;
    return this.exchange('', pred, timeoutMs);
  }

  private take(r: BoshReply, pred: (el: Element) => boolean): Element | undefined {
    let found: Element | undefined;
    for (const el of r.body?.elements ?? []) {
      if (!found && pred(el)) found = el;
      else this.received.push(el);
    }
    return found;
  }
}
