/**
 * Drives @xmpp/client (the xmpp.js library web and Node apps use) against our server.
 * It is ESM-only, so it is loaded with a dynamic import (jest runs with --experimental-vm-modules).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

// TLS verification of the self-signed test certificate is turned off in test/global-setup.js.

export type XmlEl = any;

export interface JsClient {
  readonly jid: string;
  readonly xmpp: any;
  /** Every stanza received since start, oldest first. */
  readonly inbox: XmlEl[];
  xml: (name: string, attrs?: Record<string, string | undefined>, ...children: any[]) => XmlEl;
  send(el: XmlEl): Promise<void>;
  /** Sends an IQ and resolves with the result (rejects with the stanza error). */
  iq(el: XmlEl, timeoutMs?: number): Promise<XmlEl>;
  /** Resolves with the first stanza (already received or future) matching `pred`, and removes it from the inbox. */
  waitFor(pred: (el: XmlEl) => boolean, timeoutMs?: number, what?: string): Promise<XmlEl>;
  stop(): Promise<void>;
}

export interface JsClientOptions {
  /** The TCP port (for 'starttls' and 'direct'); unused with `service`. */
  port?: number;
  /** A full service URL instead, e.g. ws://127.0.0.1:5280/xmpp-websocket (XMPP over WebSocket, RFC 7395). */
  service?: string;
  username: string;
  password: string;
  resource?: string;
  domain?: string;
  /** 'starttls' (xmpp:// on the STARTTLS port) or 'direct' (xmpps://, XEP-0368). */
  tls?: 'starttls' | 'direct';
  /** Sees every element the client sends, from the first (e.g. to check the SASL mechanism). */
  onSend?: (el: XmlEl) => void;
}

export async function loadXmppJs(): Promise<any> {
  return import('@xmpp/client');
}

export async function jsClient(opts: JsClientOptions): Promise<JsClient> {
  const { client, xml } = await loadXmppJs();
  // @xmpp/websocket uses the global WebSocket, which Node 20 does not have: lend it ws's.
  (globalThis as any).WebSocket ??= (await import('ws')).WebSocket;
  const scheme = opts.tls === 'direct' ? 'xmpps' : 'xmpp';
  if (opts.service === undefined && opts.port === undefined) throw new Error('jsClient needs a port or a service URL');
  const xmpp = client({
    service: opts.service ?? `${scheme}://127.0.0.1:${opts.port}`,
    domain: opts.domain ?? 'localhost',
    username: opts.username,
    password: opts.password,
    resource: opts.resource,
  });
  xmpp.reconnect.stop();
  const inbox: XmlEl[] = [];
  const waiters: { pred: (el: XmlEl) => boolean; resolve: (el: XmlEl) => void }[] = [];
  xmpp.on('error', () => { /* surfaced through start() or waitFor timeouts */ });
  if (opts.onSend) xmpp.on('send', opts.onSend);
  xmpp.on('stanza', (el: XmlEl) => {
    const i = waiters.findIndex((w) => w.pred(el));
    if (i !== -1) {
      const [w] = waiters.splice(i, 1);
      w!.resolve(el);
      return;
    }
    inbox.push(el);
  });
  const address = await xmpp.start();
  return {
    jid: address.toString(),
    xmpp,
    inbox,
    xml,
    send: (el) => xmpp.send(el),
    iq: (el, timeoutMs = 5000) => xmpp.iqCaller.request(el, timeoutMs),
    waitFor(pred, timeoutMs = 5000, what = 'stanza') {
      const i = inbox.findIndex(pred);
      if (i !== -1) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (el: XmlEl) => { clearTimeout(t); resolve(el); } };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}; inbox: ${inbox.map(String).join('\n')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop() {
      try {
        await xmpp.stop();
      } catch {
        /* already closed */
      }
    },
  };
}
