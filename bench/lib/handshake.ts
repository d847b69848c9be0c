/**
 * The login handshake shared by the generator's TCP and WebSocket clients: a queue of
 * handshake-time stanzas (as strings), SASL PLAIN or SCRAM-SHA-1, resource binding with the
 * optional legacy session, and a ping barrier. Subclasses own the framing: `send` and
 * opening the stream; they call `deliver` and `fail` as stanzas and errors come in.
 */
import { ScramClient, XmppError, escapeXml, textOf, type Mechanism, type ScramCache } from './client';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export abstract class HandshakeConnection {
  private queue: string[] = [];
  private waiter: { resolve: (s: string) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  jid = '';

  /** Writes one element (or a stream header) to the server. */
  abstract send(data: string | Buffer): boolean;

  protected deliver(s: string): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(s);
    } else {
      this.queue.push(s);
    }
  }

  protected fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.reject(err);
    }
  }

  /** The next stanza (handshake only). */
  next(): Promise<string> {
    const s = this.queue.shift();
    if (s !== undefined) return Promise.resolve(s);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The next stanza; a stream error becomes an exception. */
  async expect(what: string): Promise<string> {
    const s = await this.next();
    if (/^<(stream:)?error/.test(s)) throw new XmppError(`stream error while waiting for ${what}: ${s}`);
    return s;
  }

  async authenticate(user: string, password: string, mechanism: Mechanism, cache?: ScramCache): Promise<void> {
    if (mechanism === 'PLAIN') {
      const token = Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');
      this.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${token}</auth>`);
      const r = await this.expect('SASL result');
      if (!r.startsWith('<success')) throw new XmppError(`PLAIN login of ${user} failed: ${r}`);
      return;
    }
    const scram = new ScramClient(user, password, cache);
    this.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
    const ch = await this.expect('SASL challenge');
    if (!ch.startsWith('<challenge')) throw new XmppError(`SCRAM login of ${user} failed: ${ch}`);
    const serverFirst = Buffer.from(textOf(ch), 'base64').toString();
    this.send(`<response xmlns='${NS_SASL}'>${Buffer.from(scram.final(serverFirst)).toString('base64')}</response>`);
    let r = await this.expect('SASL result');
    // Some servers send the verifier in a final challenge and expect an empty response.
    if (r.startsWith('<challenge')) {
      scram.verify(Buffer.from(textOf(r), 'base64').toString());
      this.send(`<response xmlns='${NS_SASL}'/>`);
      r = await this.expect('SASL result');
      if (!r.startsWith('<success')) throw new XmppError(`SCRAM login of ${user} failed: ${r}`);
    } else if (r.startsWith('<success')) {
      scram.verify(Buffer.from(textOf(r), 'base64').toString());
    } else {
      throw new XmppError(`SCRAM login of ${user} failed: ${r}`);
    }
  }

  /** Binds a resource (and opens the legacy session when the server requires it); returns the full JID. */
  async bind(resource: string, features: string): Promise<string> {
    this.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${escapeXml(resource)}</resource></bind></iq>`);
    const r = await this.expect('bind result');
    const m = /<jid>([^<]+)<\/jid>/.exec(r);
    if (!/type=['"]result['"]/.test(r)) throw new XmppError(`bind failed: ${r}`);
    if (!m) throw new XmppError(`bind result without jid: ${r}`);
    this.jid = m[1]!;
    const sess = /<session xmlns=['"]urn:ietf:params:xml:ns:xmpp-session['"](\s*\/>|>(.*?)<\/session>)/.exec(features);
    if (sess && !(sess[2] ?? '').includes('optional')) {
      this.send(`<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
      const s = await this.expect('session result');
      if (!/type=['"]result['"]/.test(s)) throw new XmppError(`session failed: ${s}`);
    }
    return this.jid;
  }

  /** Sends a ping to the server and waits for its answer: a barrier that everything sent before it was processed. */
  async ping(id = 'ping'): Promise<void> {
    this.send(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    for (;;) {
      const s = await this.expect('ping result');
      if (s.startsWith('<iq') && (s.includes(`id='${id}'`) || s.includes(`id="${id}"`))) return;
    }
  }

  /** Drops whatever handshake-time stanzas are queued (presence echoes and the like). */
  drain(): void {
    this.queue = [];
  }
}
