import type { Logger } from 'pino';
import { Element } from './xml/element';
import { Jid } from './jid';
import { StanzaError, errorReply } from './errors';
import { HookBus } from './hooks';
import type { Session } from './session';
import type { SessionRegistry } from './sessions';
import type { AccountStore } from './storage/accounts';
import type { IqHandler, IqScope } from './module';

/**
 * Moves stanzas between senders and recipients. The single-process server uses
 * LocalRouter; a cluster node would implement the same two entry points, forwarding
 * stanzas for sessions on other nodes through its SessionRegistry.
 */
export interface StanzaRouter {
  /** A stanza from a bound local client: 'from' is stamped here, then policy, then delivery. */
  fromClient(session: Session, stanza: Element): Promise<void>;
  /** Deliver a stanza whose 'from' is already trusted (the server, a module, another node). */
  route(stanza: Element): Promise<void>;
}

/** Handles stanzas for a domain this server does not host itself (components, later federation). */
export type DomainHandler = (stanza: Element) => void | Promise<void>;

interface IqEntry { handler: IqHandler; owner: string }
type IqSlots = Partial<Record<IqScope, IqEntry>>;

export interface RouterDeps {
  hooks: HookBus;
  sessions: SessionRegistry;
  accounts: AccountStore;
  domains: readonly string[];
  log: Logger;
}

export class LocalRouter implements StanzaRouter {
  private readonly iqTable = new Map<string, IqSlots>();
  private readonly domainHandlers = new Map<string, DomainHandler>();
  private readonly localDomains: Set<string>;
  private readonly hooks: HookBus;
  private readonly sessions: SessionRegistry;
  private readonly accounts: AccountStore;
  private readonly log: Logger;
  private readonly onHookError = (err: unknown, owner: string) => this.log.error({ err, module: owner }, 'hook handler failed');

  constructor(deps: RouterDeps) {
    this.hooks = deps.hooks;
    this.sessions = deps.sessions;
    this.accounts = deps.accounts;
    this.log = deps.log;
    this.localDomains = new Set(deps.domains);
  }

  isLocalDomain(domain: string): boolean {
    return this.localDomains.has(domain);
  }

  /** Registers an IQ handler; returns its unregistration. Two handlers for one slot is a load error. */
  registerIq(type: 'get' | 'set', xmlns: string, name: string, scope: IqScope, handler: IqHandler, owner: string): () => void {
    const key = iqKey(type, xmlns, name);
    const slots = this.iqTable.get(key) ?? {};
    const existing = slots[scope];
    if (existing) throw new Error(`${owner}: IQ ${type} {${xmlns}}${name} (${scope}) is already handled by ${existing.owner}`);
    const entry = { handler, owner };
    slots[scope] = entry;
    this.iqTable.set(key, slots);
    return () => {
      if (slots[scope] === entry) delete slots[scope];
    };
  }

  registerDomain(domain: string, handler: DomainHandler): () => void {
    if (this.domainHandlers.has(domain) || this.localDomains.has(domain)) throw new Error(`domain ${domain} is already served`);
    this.domainHandlers.set(domain, handler);
    return () => this.domainHandlers.delete(domain);
  }

  async fromClient(session: Session, stanza: Element): Promise<void> {
    stanza.attrs.from = session.jid.toString();
    let to: Jid | undefined;
    const toAttr = stanza.attrs.to;
    if (toAttr !== undefined) {
      to = Jid.tryParse(toAttr);
      if (to === undefined) return this.bounce(stanza, new StanzaError('jid-malformed', 'The to address is not a valid JID'));
    }
    try {
      if (await this.hooks.fire('stanza/outbound', { session, stanza, to }, this.onHookError)) return;
      switch (stanza.name) {
        case 'presence':
          if (await this.hooks.fire('presence/outbound', { session, stanza, to }, this.onHookError)) return;
          if (to) await this.deliver(stanza, to, session.jid);
          return;
        case 'message':
          // RFC 6120 §10.3.1: a message with no 'to' is for the sender's own bare JID.
          return await this.deliver(stanza, to ?? session.jid.bare(), session.jid);
        case 'iq':
          return await this.handleIq(stanza, session.jid, to, session);
      }
    } catch (err) {
      this.fail(stanza, err);
    }
  }

  async route(stanza: Element): Promise<void> {
    const to = Jid.tryParse(stanza.attrs.to);
    const from = Jid.tryParse(stanza.attrs.from);
    if (!to || !from) {
      this.log.warn({ to: stanza.attrs.to, from: stanza.attrs.from, name: stanza.name }, 'dropping unroutable stanza');
      return;
    }
    try {
      if (stanza.name === 'iq') await this.handleIq(stanza, from, to, this.sessions.get(from));
      else await this.deliver(stanza, to, from);
    } catch (err) {
      this.fail(stanza, err);
    }
  }

  /**
   * Delivers again a message that reached a session which then vanished without
   * acknowledging it (XEP-0198): to the account's other resources, else offline storage.
   * Policy, archive and carbons hooks already ran the first time, so they are not fired
   * again (the account's carbons-enabled resources already have a copy).
   */
  async redeliver(stanza: Element): Promise<void> {
    const to = Jid.tryParse(stanza.attrs.to);
    const from = Jid.tryParse(stanza.attrs.from);
    if (!to || !from || stanza.name !== 'message' || !this.localDomains.has(to.domain)) return;
    const type = stanza.attrs.type ?? 'normal';
    if (type !== 'chat' && type !== 'normal') return;
    try {
      await this.deliverMessage(stanza, to, from, false);
    } catch (err) {
      this.fail(stanza, err);
    }
  }

  /** Message and presence delivery by 'to' (RFC 6121 §8). */
  private async deliver(stanza: Element, to: Jid, from: Jid): Promise<void> {
    if (!this.localDomains.has(to.domain)) return this.toOtherDomain(stanza, to);
    if (to.local === '') {
      if (await this.hooks.fire('stanza/host', { stanza, to, from }, this.onHookError)) return;
      const type = stanza.attrs.type ?? 'normal';
      if (stanza.name === 'message' && (type === 'normal' || type === 'chat')) this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    if (await this.hooks.fire('stanza/inbound', { stanza, to, from }, this.onHookError)) return;
    if (stanza.name === 'presence') {
      if (await this.hooks.fire('presence/inbound', { stanza, to, from }, this.onHookError)) return;
      if (to.resource !== '') this.sessions.get(to)?.send(stanza);
      else for (const s of this.sessions.ofAccount(to.bareString)) if (s.presence) s.send(stanza);
      return;
    }
    if (stanza.name !== 'message') return;
    if (await this.hooks.fire('message/inbound', { stanza, to, from }, this.onHookError)) return;
    await this.deliverMessage(stanza, to, from);
  }

  /** RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID). */
  private async deliverMessage(stanza: Element, to: Jid, from: Jid, announce = true): Promise<void> {
    const type = stanza.attrs.type ?? 'normal';
    if (to.resource !== '') {
      const target = this.sessions.get(to);
      if (target) return this.handOver(stanza, to, from, [target], announce);
      // §8.5.3.2.1: no such resource. Chat and normal fall back to the bare JID.
      if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
      if (type !== 'chat' && type !== 'normal') return;
    }
    if (type === 'error') return;
    if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
    const bare = to.bareString;
    const targets = highestPriority(this.sessions.ofAccount(bare));
    if (type === 'headline') {
      return this.handOver(stanza, to, from, this.sessions.ofAccount(bare).filter((s) => s.presence && s.priority >= 0), announce);
    }
    if (targets.length > 0) return this.handOver(stanza, to, from, targets, announce);
    if (!(await this.accounts.exists(bare))) return this.bounce(stanza, new StanzaError('service-unavailable'));
    if (await this.hooks.fire('message/offline', { stanza, to: to.bare(), from }, this.onHookError)) return;
    this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** Gives a message to sessions; `announce` fires message/delivered (carbons) for it. */
  private async handOver(stanza: Element, to: Jid, from: Jid, sessions: readonly Session[], announce: boolean): Promise<void> {
    for (const s of sessions) s.send(stanza);
    if (announce && sessions.length > 0 && this.hooks.has('message/delivered')) {
      await this.hooks.fire('message/delivered', { stanza, to, from, sessions }, this.onHookError);
    }
  }

  private async handleIq(stanza: Element, from: Jid, to: Jid | undefined, session: Session | undefined): Promise<void> {
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') {
      // Replies go to full JIDs; replies to the server or an account are not awaited by anyone yet.
      if (to && to.resource !== '' && this.localDomains.has(to.domain)) {
        if (to.bareString !== from.bareString && (await this.hooks.fire('stanza/inbound', { stanza, to, from }, this.onHookError))) return;
        this.sessions.get(to)?.send(stanza);
      }
      else if (to && !this.localDomains.has(to.domain)) await this.toOtherDomain(stanza, to);
      return;
    }
    if (type !== 'get' && type !== 'set') return this.bounce(stanza, new StanzaError('bad-request', 'IQ type must be get, set, result or error'));
    if (stanza.attrs.id === undefined) return this.bounce(stanza, new StanzaError('bad-request', 'IQ needs an id'));
    if (to && !this.localDomains.has(to.domain)) return this.toOtherDomain(stanza, to);
    if (to && to.local !== '' && to.bareString !== from.bareString) {
      if (await this.hooks.fire('stanza/inbound', { stanza, to, from }, this.onHookError)) return;
    }
    if (to && to.resource !== '') {
      const target = this.sessions.get(to);
      if (target) return target.send(stanza);
      return this.bounce(stanza, new StanzaError('service-unavailable'));
    }
    const children = stanza.elements;
    if (children.length !== 1) return this.bounce(stanza, new StanzaError('bad-request', 'An IQ get or set carries exactly one child element'));
    const payload = children[0]!;
    const slots = this.iqTable.get(iqKey(type, payload.attrs.xmlns ?? '', payload.name));
    let entry: IqEntry | undefined;
    let target: Jid;
    if (to === undefined) {
      // RFC 6120 §10.3.3: no 'to' means the server answers on behalf of the account.
      target = from.bare();
      entry = slots?.self ?? slots?.account ?? slots?.host;
    } else if (to.local === '') {
      target = to;
      entry = slots?.host;
    } else if (to.bareString === from.bareString) {
      target = to;
      entry = slots?.self ?? slots?.account;
    } else {
      target = to;
      entry = slots?.account;
      if (entry && !(await this.accounts.exists(to.bareString))) entry = undefined;
    }
    if (!entry) return this.bounce(stanza, new StanzaError('service-unavailable'));
    let result: Element | void;
    try {
      result = await entry.handler({ stanza, payload, type, from, to: target, session });
    } catch (err) {
      if (!(err instanceof StanzaError)) this.log.error({ err, module: entry.owner, xmlns: payload.attrs.xmlns }, 'IQ handler failed');
      return this.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    }
    const reply = new Element('iq', { type: 'result', id: stanza.attrs.id!, to: from.toString() }, result ? [result] : []);
    if (stanza.attrs.to !== undefined) reply.attrs.from = stanza.attrs.to;
    if (session && !session.closed) session.send(reply);
    else await this.route(withFrom(reply, target));
  }

  /** True when a module answers this IQ before authentication (XEP-0077 registration). */
  hasPreAuthIq(type: 'get' | 'set', xmlns: string, name: string): boolean {
    return this.iqTable.get(iqKey(type, xmlns, name))?.preauth !== undefined;
  }

  /**
   * An IQ on a stream that has not authenticated: only 'preauth' handlers answer it, and the
   * reply goes straight back on that stream (it has no JID to route to).
   */
  async handlePreAuthIq(stanza: Element, domain: Jid, remoteAddress: string, reply: (el: Element) => void): Promise<void> {
    const type = stanza.attrs.type;
    const children = stanza.elements;
    const payload = children[0];
    const fail = (err: StanzaError) => reply(errorReply(stanza, err, domain.toString()));
    if (type === 'result' || type === 'error') return;
    if ((type !== 'get' && type !== 'set') || stanza.attrs.id === undefined || children.length !== 1 || !payload) {
      return fail(new StanzaError('bad-request'));
    }
    const entry = this.iqTable.get(iqKey(type, payload.attrs.xmlns ?? '', payload.name))?.preauth;
    if (!entry) return fail(new StanzaError('service-unavailable'));
    try {
      const result = await entry.handler({ stanza, payload, type, from: domain, to: domain, session: undefined, remoteAddress });
      reply(new Element('iq', { type: 'result', id: stanza.attrs.id, from: domain.toString() }, result ? [result] : []));
    } catch (err) {
      if (!(err instanceof StanzaError)) this.log.error({ err, module: entry.owner }, 'IQ handler failed');
      fail(err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    }
  }

  private async toOtherDomain(stanza: Element, to: Jid): Promise<void> {
    const handler = this.domainHandlers.get(to.domain);
    if (handler) return handler(stanza);
    if (stanza.name === 'presence' && stanza.attrs.type !== 'error') return; // nothing to report for presence
    this.bounce(stanza, new StanzaError('remote-server-not-found'));
  }

  private fail(stanza: Element, err: unknown): void {
    if (err instanceof StanzaError) return this.bounce(stanza, err);
    this.log.error({ err, name: stanza.name }, 'routing failed');
    this.bounce(stanza, new StanzaError('internal-server-error'));
  }

  /** Sends an error reply to the sender of `stanza`; errors are never answered with errors. */
  bounce(stanza: Element, err: StanzaError): void {
    if (stanza.attrs.type === 'error') return;
    const from = stanza.attrs.from;
    if (from === undefined) return;
    const reply = errorReply(stanza, err, stanza.attrs.to ?? Jid.tryParse(from)?.domain);
    const sender = Jid.tryParse(from);
    if (!sender) return;
    if (this.localDomains.has(sender.domain)) {
      if (sender.resource !== '') this.sessions.get(sender)?.send(reply);
      return;
    }
    void this.toOtherDomain(reply, sender);
  }
}

function iqKey(type: string, xmlns: string, name: string): string {
  return type + ' ' + xmlns + ' ' + name;
}

function withFrom(el: Element, from: Jid): Element {
  if (el.attrs.from === undefined) el.attrs.from = from.toString();
  return el;
}

/** Available sessions with the highest non-negative priority (RFC 6121 §8.5.2.1.1). */
function highestPriority(sessions: readonly Session[]): Session[] {
  let best = -1;
  let out: Session[] = [];
  for (const s of sessions) {
    if (!s.presence || s.priority < 0) continue;
    if (s.priority > best) {
      best = s.priority;
      out = [s];
    } else if (s.priority === best) out.push(s);
  }
  return out;
}
