import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Element, x, type Attrs } from '../xml/element';
import { Jid, prepareResourcepart } from '../jid';
import { StreamError, StanzaError, errorReply, NS_STANZAS } from '../errors';
import type { Session } from '../session';
import type { Core } from '../core';
import type { Transport } from './transport';
import type { AuthThrottle } from './auth-throttle';
import { NS_SM, StreamManagement, parseH } from './stream-management';
import { ClientState, NS_CSI } from './client-state';
import {
  createMechanism, offeredMechanisms, unavailableMechanismCondition,
  type SaslContext, type SaslMechanism, type SaslStep, type SaslCondition,
} from '../sasl';

export const NS_CLIENT = 'jabber:client';
export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
export const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';
export const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';
const NS_PING = 'urn:xmpp:ping';

/** RFC 6120 §6.4.5: a few retries with wrong credentials, then the connection goes. */
const MAX_WRONG_CREDENTIALS = 5;
/** Failures of any kind (mechanism fallbacks, malformed messages) allowed on one stream. */
const MAX_SASL_FAILURES = 10;
/** Stanzas waiting for the handler before we stop reading from the socket. */
const MAX_QUEUED = 64;

export interface C2sOptions {
  requireTls: boolean;
  authTimeoutMs: number;
  idleTimeoutMs: number;
  /** XEP-0198: how long a dropped session waits for its client to resume (0: never). */
  resumeTimeoutMs: number;
  /** Sustained stanzas per second a bound session may send (default: no limit); above it, handling waits. */
  stanzasPerSecond?: number;
  /** Stanzas it may send at once before that rate applies. */
  stanzaBurst?: number;
  throttle: AuthThrottle;
}

type Stage =
  | 'start'          // may upgrade with STARTTLS
  | 'auth'           // SASL
  | 'bind'           // authenticated, resource binding
  | 'bound'          // a routable session
  | 'closed';

let nextId = 1;

/**
 * One client connection from stream header to close (RFC 6120 §4-§7): STARTTLS, SASL,
 * resource binding, then stanzas in order through the router. Stanzas are handled one at
 * a time per session, so a client's stanzas keep their order even when handlers await.
 */
export class C2sSession implements Session {
  readonly id: string;
  readonly remoteAddress: string;
  readonly data = new Map<string, unknown>();
  presence: Element | undefined;
  priority = 0;
  rosterRequested = false;
  jid!: Jid;

  private stage: Stage = 'start';
  private streamOpen = false;
  private domain: string;
  private username: string | undefined;
  private sasl: SaslMechanism | undefined;
  private saslFailures = 0;
  private wrongCredentials = 0;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private paused = false;
  /** Token bucket for stanzasPerSecond; NaN until the session is bound. */
  private stanzaTokens = Number.NaN;
  private stanzaRefilledAt = 0;
  private rateLogged = false;
  private readonly createdAt = Date.now();
  private lastActivity = Date.now();
  private pingSentAt = 0;
  private readonly log: Logger;
  private transport: Transport;
  /** XEP-0198 state once the client enabled stream management. */
  private sm: StreamManagement | undefined;
  /** The connection dropped; the session waits for a resumption until this timer fires. */
  private hibernation: NodeJS.Timeout | undefined;
  /** This connection resumed that session: timers and closing go to it. */
  private resumedInto: C2sSession | undefined;
  private readonly clientState = new ClientState();
  /** Stanzas (and so message bodies) are logged at debug level only. */
  private readonly debug: boolean;

  constructor(
    transport: Transport,
    private readonly core: Core,
    private readonly opts: C2sOptions,
    log: Logger,
  ) {
    this.id = (nextId++).toString(36) + randomBytes(4).toString('hex');
    this.remoteAddress = transport.remoteAddress;
    this.domain = core.domains[0]!;
    this.log = log.child({ session: this.id });
    this.debug = this.log.isLevelEnabled('debug');
    if (transport.secure) this.stage = 'auth';
    this.transport = transport;
    this.attachTo(transport);
    this.log.debug({ address: this.remoteAddress, secure: transport.secure }, 'connected');
  }

  private attachTo(transport: Transport): void {
    transport.attach({
      onOpen: (attrs, name) => this.onOpen(attrs, name),
      onElement: (el) => this.enqueue(el),
      onClose: () => this.end(),
      onStreamError: (err) => this.fail(err),
      onDisconnect: () => this.onDisconnect(transport),
      onActivity: () => {
        this.lastActivity = Date.now();
        this.pingSentAt = 0;
      },
    });
  }

  get closed(): boolean {
    return this.stage === 'closed';
  }

  get isBound(): boolean {
    return this.stage === 'bound';
  }

  send(stanza: Element): void {
    if (this.stage === 'closed') return;
    if (!this.clientState.isInactive) return this.write(stanza);
    for (const el of this.clientState.offer(stanza)) this.write(el);
  }

  /** Counts the stanza for stream management; while hibernating it only waits in the queue. */
  private write(stanza: Element): void {
    const sm = this.sm;
    if (sm) {
      sm.sent(stanza);
      if (this.hibernation) return;
    }
    if (this.debug) this.log.debug({ out: stanza.toString() }, 'stanza out');
    this.transport.send(stanza);
    // Ask for an acknowledgement now and then, so the queue of unacknowledged stanzas stays short.
    if (sm && !sm.ackRequested && sm.unackedCount >= 5) {
      sm.ackRequested = true;
      this.transport.send(x('r', { xmlns: NS_SM }));
    }
  }

  close(error?: StreamError): void {
    if (this.resumedInto) return this.resumedInto.close(error);
    this.end(error);
  }

  /** Called about every few seconds by the listener: auth deadline and idle detection (XEP-0199 ping, then drop). */
  checkTimers(now: number): void {
    if (this.resumedInto) return this.resumedInto.checkTimers(now);
    if (this.stage === 'closed' || this.hibernation) return;
    if (this.stage !== 'bound') {
      if (now - this.createdAt > this.opts.authTimeoutMs) this.fail(new StreamError('connection-timeout', 'Authentication took too long'));
      return;
    }
    if (now - this.lastActivity < this.opts.idleTimeoutMs) return;
    if (this.pingSentAt === 0) {
      this.pingSentAt = now;
      this.send(x('iq', { type: 'get', id: 'idle-' + now.toString(36), from: this.domain, to: this.jid.toString() }, x('ping', { xmlns: NS_PING })));
    } else if (now - this.pingSentAt > 60_000) {
      this.fail(new StreamError('connection-timeout', 'No answer to ping'));
    }
  }

  // ---- stream header ----------------------------------------------------------

  private onOpen(attrs: Attrs, qualifiedName: string): void {
    const requested = attrs.to;
    const headerError = this.checkHeader(attrs, qualifiedName);
    if (!headerError && requested !== undefined) this.domain = Jid.tryParse(requested)?.domain ?? this.domain;
    const reply: Attrs = { from: this.domain, id: randomBytes(8).toString('hex'), version: '1.0', 'xml:lang': 'en' };
    if (attrs.from && Jid.tryParse(attrs.from)) reply.to = attrs.from;
    this.transport.openStream(reply);
    this.streamOpen = true;
    if (headerError) return this.fail(headerError);
    this.transport.send(this.features());
  }

  /** RFC 6120 §4.7-§4.8: namespaces, version, and a 'to' we host (unchanged across restarts). */
  private checkHeader(attrs: Attrs, qualifiedName: string): StreamError | undefined {
    const colon = qualifiedName.indexOf(':');
    const prefix = colon === -1 ? '' : qualifiedName.slice(0, colon);
    const local = colon === -1 ? qualifiedName : qualifiedName.slice(colon + 1);
    const streamNs = prefix === '' ? attrs.xmlns : attrs['xmlns:' + prefix];
    if (local !== 'stream' || streamNs !== NS_STREAM) return new StreamError('invalid-namespace', 'The root must be <stream:stream> in the streams namespace');
    if (prefix === '') return new StreamError('bad-namespace-prefix', 'The stream element needs the stream: prefix');
    if (attrs.xmlns !== NS_CLIENT) return new StreamError('invalid-namespace', 'The content namespace must be jabber:client');
    const version = attrs.version;
    const major = version === undefined ? 0 : Number(version.split('.')[0]);
    if (!Number.isInteger(major) || major < 1) return new StreamError('unsupported-version', 'XMPP 1.0 is required');
    if (attrs.to !== undefined) {
      const to = Jid.tryParse(attrs.to);
      if (!to || !to.isDomain || !this.core.isLocalDomain(to.domain)) return new StreamError('host-unknown', `This server does not host ${attrs.to}`);
      if (this.stage !== 'start' && this.stage !== 'auth' && to.domain !== this.domain) return new StreamError('host-unknown', 'The domain changed across a stream restart');
    }
    return undefined;
  }

  private features(): Element {
    const features = x('stream:features');
    if (this.stage === 'start' || this.stage === 'auth') {
      if (this.transport.canStartTls && !this.transport.secure) {
        features.append(x('starttls', { xmlns: NS_TLS }, this.opts.requireTls ? x('required') : undefined));
      }
      if (this.stage === 'auth' || !this.opts.requireTls) {
        const ctx = this.saslContext();
        features.append(x('mechanisms', { xmlns: NS_SASL }, offeredMechanisms(ctx).map((m) => x('mechanism', null, m))));
        if (ctx.channelBindings.size > 0) {
          features.append(x('sasl-channel-binding', { xmlns: NS_SASL_CB }, [...ctx.channelBindings.keys()].map((type) => x('channel-binding', { type }))));
        }
        if (this.core.router.hasPreAuthIq('set', 'jabber:iq:register', 'query')) features.append(x('register', { xmlns: NS_REGISTER_FEATURE }));
      }
    } else if (this.stage === 'bind') {
      features.append(x('bind', { xmlns: NS_BIND }), x('session', { xmlns: NS_SESSION }, x('optional')));
      features.append(x('sm', { xmlns: NS_SM }), x('csi', { xmlns: NS_CSI }));
      features.append(...this.core.modules.streamFeatures());
    }
    return features;
  }

  // ---- stanza queue -----------------------------------------------------------

  private enqueue(el: Element): void {
    if (this.stage === 'closed') return;
    this.queued++;
    if (this.queued > MAX_QUEUED && !this.paused) {
      this.paused = true;
      this.transport.pause();
    }
    this.queue = this.queue.then(() => this.handle(el)).catch((err) => {
      if (err instanceof StreamError) return this.fail(err);
      this.log.error({ err }, 'stanza handling failed');
      this.fail(new StreamError('internal-server-error'));
    }).finally(() => {
      this.queued--;
      if (this.paused && this.queued < MAX_QUEUED / 2) {
        this.paused = false;
        this.transport.resume();
      }
    });
  }

  private async handle(el: Element): Promise<void> {
    if (this.stage === 'closed') return;
    switch (this.stage) {
      case 'start': return this.handleStart(el);
      case 'auth': return this.handleAuth(el);
      case 'bind': return this.handleBind(el);
      case 'bound':
        if (this.opts.stanzasPerSecond && el.attrs.xmlns === NS_CLIENT) {
          await this.stanzaRate();
          if (this.stage !== 'bound') return;
        }
        return this.handleStanza(el);
    }
  }

  /**
   * limits.stanzasPerSecond: over the rate the stanza waits for its turn. The queue behind it
   * grows, and past MAX_QUEUED the transport stops reading, so a flooding client is slowed
   * down (TCP backpressure), not cut off; nothing it sent is dropped.
   */
  private async stanzaRate(): Promise<void> {
    const rate = this.opts.stanzasPerSecond!;
    const burst = Math.max(this.opts.stanzaBurst ?? rate, 1);
    const now = performance.now();
    this.stanzaTokens = Number.isNaN(this.stanzaTokens) ? burst : Math.min(burst, this.stanzaTokens + ((now - this.stanzaRefilledAt) * rate) / 1000);
    this.stanzaRefilledAt = now;
    this.stanzaTokens -= 1;
    if (this.stanzaTokens >= 0) return;
    if (!this.rateLogged) {
      this.rateLogged = true; // once per session
      this.log.info({ jid: this.jid.toString(), limit: rate }, 'session over limits.stanzasPerSecond: slowing it down');
    }
    await sleep(Math.ceil((-this.stanzaTokens * 1000) / rate));
  }

  private async handleStart(el: Element): Promise<void> {
    if (el.is('starttls', NS_TLS) && this.transport.canStartTls) {
      this.transport.send(x('proceed', { xmlns: NS_TLS }));
      this.streamOpen = false;
      try {
        await this.transport.startTls();
      } catch (err) {
        this.log.info({ err: (err as Error).message, address: this.remoteAddress }, 'TLS handshake failed');
        this.transport.close();
        return;
      }
      this.stage = 'auth';
      return;
    }
    if (!this.opts.requireTls) return this.handleAuth(el);
    if (el.is('auth', NS_SASL)) return this.saslFailure('encryption-required', 'Use STARTTLS first');
    throw new StreamError('policy-violation', 'TLS is required: use STARTTLS');
  }

  // ---- SASL (RFC 6120 §6) -------------------------------------------------------

  private saslContext(): SaslContext {
    return {
      lookup: (username, hash) => this.core.accounts.credentials(`${username}@${this.domain}`, hash),
      channelBindings: this.transport.channelBindings(),
      secure: this.transport.secure,
      allowPlainWithoutTls: !this.opts.requireTls,
      domain: this.domain,
      anonymous: this.core.isAnonymousDomain(this.domain),
    };
  }

  private async handleAuth(el: Element): Promise<void> {
    if (el.is('auth', NS_SASL)) {
      const name = el.attrs.mechanism ?? '';
      const ctx = this.saslContext();
      this.sasl = createMechanism(name, ctx);
      if (!this.sasl) return this.saslFailure(unavailableMechanismCondition(name, ctx));
      const text = el.text();
      // No initial response: an empty challenge asks for it (RFC 6120 §6.4.2). '=' is an empty one.
      if (text === '') return this.transport.send(x('challenge', { xmlns: NS_SASL }));
      return this.saslStep(text === '=' ? Buffer.alloc(0) : decodeBase64(text));
    }
    if (el.is('response', NS_SASL)) {
      if (!this.sasl) return this.saslFailure('malformed-request', 'No authentication in progress');
      const text = el.text();
      return this.saslStep(text === '' || text === '=' ? Buffer.alloc(0) : decodeBase64(text));
    }
    if (el.is('abort', NS_SASL)) {
      this.sasl = undefined;
      return this.saslFailure('aborted');
    }
    if (el.name === 'iq' && el.attrs.xmlns === NS_CLIENT) {
      // Only XEP-0077 registration may happen before authentication.
      return this.core.router.handlePreAuthIq(stripNs(el), new Jid('', this.domain), this.remoteAddress, (reply) => this.transport.send(reply));
    }
    throw new StreamError('not-authorized', 'Authenticate first');
  }

  private async saslStep(input: Buffer | undefined): Promise<void> {
    const mech = this.sasl!;
    if (input === undefined) {
      this.sasl = undefined;
      return this.saslFailure('incorrect-encoding');
    }
    const step: SaslStep = await mech.step(input);
    if (step.kind === 'challenge') {
      this.transport.send(x('challenge', { xmlns: NS_SASL }, step.data.toString('base64')));
      return;
    }
    this.sasl = undefined;
    if (step.kind === 'failure') {
      if (!step.guess) return this.saslFailure(step.condition, step.text);
      const account = step.username ? `${step.username}@${this.domain}` : undefined;
      const delay = this.opts.throttle.fail(account, this.remoteAddress);
      this.log.warn({ account, address: this.remoteAddress, mechanism: mech.name }, 'login failed: wrong credentials');
      if (delay > 0) await sleep(delay);
      this.wrongCredentials++;
      return this.saslFailure(step.condition, step.text);
    }
    this.username = step.username;
    this.opts.throttle.succeed(`${step.username}@${this.domain}`);
    this.transport.send(x('success', { xmlns: NS_SASL }, step.data && step.data.length > 0 ? step.data.toString('base64') : undefined));
    this.log.info({ account: `${step.username}@${this.domain}`, address: this.remoteAddress, mechanism: mech.name }, 'authenticated');
    this.stage = 'bind';
    this.streamOpen = false;
    this.transport.restart();
  }

  private saslFailure(condition: SaslCondition, text?: string): void {
    this.transport.send(x('failure', { xmlns: NS_SASL }, x(condition), text !== undefined ? x('text', { 'xml:lang': 'en' }, text) : undefined));
    if (condition === 'aborted') return;
    if (++this.saslFailures >= MAX_SASL_FAILURES || this.wrongCredentials >= MAX_WRONG_CREDENTIALS) {
      this.fail(new StreamError('policy-violation', 'Too many failed authentication attempts'));
    }
  }

  // ---- resource binding (RFC 6120 §7) -----------------------------------------

  private async handleBind(el: Element): Promise<void> {
    if (el.is('resume', NS_SM)) return this.resume(el);
    if (el.is('enable', NS_SM)) {
      return this.transport.send(x('failed', { xmlns: NS_SM }, x('unexpected-request', { xmlns: NS_STANZAS }, ), x('text', { xmlns: NS_STANZAS }, 'Bind a resource first')));
    }
    if (el.name !== 'iq' || el.attrs.xmlns !== NS_CLIENT) throw new StreamError('not-authorized', 'Bind a resource first');
    const stanza = stripNs(el);
    const bind = stanza.getChild('bind', NS_BIND);
    if (stanza.attrs.type === 'set' && bind) return this.bindResource(stanza, bind);
    if (stanza.attrs.type === 'set' && stanza.getChild('session', NS_SESSION)) {
      return this.transport.send(x('iq', { type: 'result', id: stanza.attrs.id }));
    }
    this.transport.send(errorReply(stanza, new StanzaError('not-authorized', 'Bind a resource first'), this.domain));
  }

  private async bindResource(stanza: Element, bind: Element): Promise<void> {
    const requested = bind.getChildText('resource')?.trim();
    let resource: string;
    if (requested) {
      try {
        resource = prepareResourcepart(requested);
      } catch {
        return this.transport.send(errorReply(stanza, new StanzaError('bad-request', 'Invalid resource'), this.domain));
      }
    } else {
      resource = 'xmppd-' + randomBytes(6).toString('hex');
    }
    this.jid = new Jid(this.username!, this.domain, resource);
    if (!(await this.core.bind(this))) {
      return this.transport.send(errorReply(stanza, new StanzaError('conflict', 'That resource is in use'), this.domain));
    }
    this.stage = 'bound';
    this.transport.send(x('iq', { type: 'result', id: stanza.attrs.id }, x('bind', { xmlns: NS_BIND }, x('jid', null, this.jid.toString()))));
    this.log.info({ jid: this.jid.toString() }, 'session bound');
  }

  // ---- stanzas ------------------------------------------------------------------

  private async handleStanza(el: Element): Promise<void> {
    if (this.debug) this.log.debug({ in: el.toString() }, 'stanza in');
    const ns = el.attrs.xmlns;
    if (ns === NS_SM) return this.handleSm(el);
    if (ns === NS_CSI) return this.handleCsi(el);
    if (ns !== NS_CLIENT || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not a stanza this server understands here`);
    }
    const from = el.attrs.from;
    if (from !== undefined && from !== this.jid.toString() && from !== this.jid.bareString) {
      throw new StreamError('invalid-from', 'The from address does not match this session');
    }
    const stanza = stripNs(el);
    if (stanza.name === 'iq' && stanza.attrs.type === 'set' && stanza.getChild('session', NS_SESSION) && stanza.attrs.to === undefined) {
      this.send(x('iq', { type: 'result', id: stanza.attrs.id }));
    } else {
      await this.core.router.fromClient(this, stanza);
    }
    this.sm?.handled();
  }

  // ---- stream management (XEP-0198) and client state (XEP-0352) -------------------

  private handleSm(el: Element): void {
    const sm = this.sm;
    switch (el.name) {
      case 'enable': {
        if (sm) return this.transport.send(x('failed', { xmlns: NS_SM }, x('unexpected-request', { xmlns: NS_STANZAS })));
        const wanted = el.attrs.resume === 'true' || el.attrs.resume === '1';
        const resumable = wanted && this.opts.resumeTimeoutMs > 0;
        const max = Number(el.attrs.max);
        const timeout = Number.isInteger(max) && max > 0 ? Math.min(max * 1000, this.opts.resumeTimeoutMs) : this.opts.resumeTimeoutMs;
        this.sm = new StreamManagement(resumable, timeout);
        if (resumable) this.core.resumable.set(this.sm.id, this);
        this.transport.send(x('enabled', {
          xmlns: NS_SM, id: resumable ? this.sm.id : undefined, resume: resumable ? 'true' : undefined,
          max: resumable ? Math.round(timeout / 1000) : undefined,
        }));
        return;
      }
      case 'r':
        if (sm) this.transport.send(x('a', { xmlns: NS_SM, h: sm.inbound }));
        return;
      case 'a': {
        if (!sm) return;
        const h = parseH(el.attrs.h);
        if (h === undefined) throw new StreamError('bad-format', "The 'h' attribute must be an unsigned 32-bit number");
        if (!sm.ack(h)) throw handledCountTooHigh(h, sm.sendCount);
        return;
      }
      default:
        throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not part of stream management`);
    }
  }

  private handleCsi(el: Element): void {
    if (el.name === 'inactive') this.clientState.setInactive();
    else if (el.name === 'active') for (const held of this.clientState.setActive()) this.write(held);
    else throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not part of client state indication`);
  }

  /** XEP-0198 §5: a new connection takes over a session whose connection dropped. */
  private resume(el: Element): void {
    const h = parseH(el.attrs.h);
    const old = this.core.resumable.get(el.attrs.previd ?? '') as C2sSession | undefined;
    const account = `${this.username}@${this.domain}`;
    if (h === undefined || !old || old.stage !== 'bound' || old.jid.bareString !== account || !old.sm) {
      this.transport.send(x('failed', { xmlns: NS_SM, h: old?.jid.bareString === account ? old.sm?.inbound : undefined },
        x('item-not-found', { xmlns: NS_STANZAS })));
      return;
    }
    if (!old.sm.ack(h)) {
      this.fail(handledCountTooHigh(h, old.sm.sendCount));
      return;
    }
    // This connection now belongs to the old session; this object only forwards timers and closing.
    this.stage = 'closed';
    this.resumedInto = old;
    old.takeOver(this.transport, this.streamOpen);
  }

  private takeOver(transport: Transport, streamOpen: boolean): void {
    const sm = this.sm!;
    if (this.hibernation) {
      clearTimeout(this.hibernation);
      this.hibernation = undefined;
    } else {
      // The old connection is still there (the client noticed the drop before we did): let it go quietly.
      const old = this.transport;
      this.transport = transport;
      old.close();
    }
    this.transport = transport;
    this.streamOpen = streamOpen;
    this.attachTo(transport);
    this.lastActivity = Date.now();
    this.pingSentAt = 0;
    transport.send(x('resumed', { xmlns: NS_SM, previd: sm.id, h: sm.inbound }));
    // Resend what the client has not acknowledged, in order; they count as sent again.
    const pending = sm.takeUnacked();
    for (const stanza of pending) this.write(stanza);
    this.log.info({ jid: this.jid.toString(), resent: pending.length }, 'session resumed');
  }

  // ---- ending ---------------------------------------------------------------------

  private fail(err: StreamError): void {
    if (this.stage === 'closed') return;
    if (err.condition !== 'connection-timeout' && err.condition !== 'system-shutdown' && err.condition !== 'conflict') {
      this.log.info({ condition: err.condition, text: err.text, address: this.remoteAddress }, 'stream error');
    }
    this.end(err);
  }

  /**
   * Ends the stream (with an error when given). The session stops being routable at once,
   * not when TCP finally closes, so contacts see it leave without delay.
   */
  private end(error?: StreamError): void {
    if (this.stage === 'closed') return;
    const wasBound = this.stage === 'bound';
    this.stage = 'closed';
    if (this.hibernation) clearTimeout(this.hibernation);
    if (error) {
      if (!this.streamOpen) {
        // RFC 6120 §4.9.1.2: a stream error is sent inside a stream, so open ours first.
        this.transport.openStream({ from: this.domain, id: randomBytes(8).toString('hex'), version: '1.0' });
        this.streamOpen = true;
      }
      this.transport.closeWithError(error);
    } else {
      this.transport.close();
    }
    if (wasBound) this.core.track(this.finish(error));
  }

  /** The connection is gone, whoever closed it. */
  private onDisconnect(transport: Transport): void {
    this.log.debug('disconnected');
    if (transport !== this.transport || this.stage === 'closed') return; // an old connection of a resumed session
    if (this.stage === 'bound' && this.sm?.resumable) {
      // XEP-0198: keep the session, queue what arrives, and wait for the client to resume.
      this.hibernation = setTimeout(() => {
        this.hibernation = undefined;
        this.log.info({ jid: this.jid.toString() }, 'session not resumed in time');
        this.stage = 'closed';
        this.core.track(this.finish());
      }, this.sm.resumeTimeoutMs);
      this.hibernation.unref();
      this.log.info({ jid: this.jid.toString(), seconds: this.sm.resumeTimeoutMs / 1000 }, 'connection lost: waiting for resumption');
      return;
    }
    const wasBound = this.stage === 'bound';
    this.stage = 'closed';
    if (wasBound) this.core.track(this.finish());
  }

  /**
   * The session is over: it leaves the routing table, and messages it never acknowledged
   * go to the account's other resources or offline storage, so none is lost.
   */
  private async finish(error?: StreamError): Promise<void> {
    const sm = this.sm;
    if (sm) this.core.resumable.delete(sm.id);
    await this.core.unbind(this, error);
    if (sm) for (const stanza of sm.takeUnacked()) await this.core.router.redeliver(stanza);
  }
}

/** Our convention: top-level stanzas carry no xmlns inside the server; transports add what they need. */
function stripNs(el: Element): Element {
  delete el.attrs.xmlns;
  return el;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(s: string): Buffer | undefined {
  const t = s.replace(/\s+/g, '');
  if (t.length % 4 !== 0 || !BASE64_RE.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function handledCountTooHigh(h: number, sendCount: number): StreamError {
  return new StreamError('undefined-condition', 'The client acknowledged more stanzas than were sent',
    x('handled-count-too-high', { xmlns: NS_SM, h, 'send-count': sendCount }));
}
