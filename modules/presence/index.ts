// RFC 6121 §3 and §4: presence subscriptions (with pre-approval, §3.4) and presence exchange.
import { defineModule, Jid, StanzaError, x, type Element, type ModuleApi, type Session } from '../../src';
import { parseXml } from '../../src/xml/parse';
import type { Relation, RelationChange, RosterService } from '../roster';
import { PRESENCE_MIGRATIONS, SqlitePresenceStore, type PresenceStore } from './store';
import {
  contactSubscribed,
  fieldsOf,
  inbound,
  outbound,
  stateOf,
  type Outcome,
  type SubscriptionStanza,
  type SubscriptionState,
} from './subscription-state';

/** RFC 6121 §3.4.1: the stream feature announcing subscription pre-approval. */
export const NS_PREAPPROVAL = 'urn:xmpp:features:pre-approval';
/** XEP-0203: Delayed Delivery, stamped on the stored unavailable presence sent in answer to a probe. */
export const NS_DELAY = 'urn:xmpp:delay';

export interface PresenceOptions {
  /**
   * Record an outbound "subscribed" sent before any request as a pre-approval (RFC 6121 §3.4).
   * The <sub/> stream feature is static, so it is offered even when this is turned off.
   */
  preApproval: boolean;
}

/** Per-session state (session.data, under the module name). */
interface SessionState {
  /** RFC 6121 §4.6: JIDs (as addressed) that got directed available presence from this session. */
  readonly directed: Set<string>;
}

const SHOW_VALUES: ReadonlySet<string> = new Set(['away', 'chat', 'dnd', 'xa']);

export default defineModule<PresenceOptions>({
  name: 'presence',
  dependencies: ['roster'],
  // RFC 6121 §3.4.1: announces subscription pre-approval after authentication.
  streamFeatures: (options) => (options.preApproval ? [x('sub', { xmlns: NS_PREAPPROVAL })] : []),
  defaults: { preApproval: true },
  migrations: PRESENCE_MIGRATIONS,
  setup(api) {
    const roster = api.service('roster');
    if (!roster) throw new Error('the roster service is missing');
    const p = new Presence(api, roster, new SqlitePresenceStore(api.db));

    // Everything a client sends as presence is handled here (the router does nothing more).
    api.hook('presence/outbound', async ({ session, stanza, to }) => {
      await p.outbound(session, stanza, to);
      return true;
    });
    // Subscription stanzas and probes are handled here; available, unavailable and error
    // presence is left to the router, which delivers it to the addressed resource or, for a
    // bare JID, to all available resources (RFC 6121 §8.5.2.1.1, §8.5.3.1).
    api.hook('presence/inbound', async ({ stanza, to, from }) => p.inbound(stanza, to, from));
    api.hook('session/closed', async ({ session }) => {
      await p.closed(session);
    });
    api.hook('user/deleted', async ({ jid }) => {
      await p.store.deleteUser(jid.bareString);
    });
  },
});

function isSubscriptionType(t: string | undefined): t is SubscriptionStanza {
  return t === 'subscribe' || t === 'subscribed' || t === 'unsubscribe' || t === 'unsubscribed';
}

function stateOfRelation(r: Relation): SubscriptionState {
  return stateOf({ subscription: r.subscription, pendingOut: r.ask, pendingIn: r.pendingIn !== undefined });
}

/** The roster fields to change to move `cur` to `outcome` (undefined when nothing changes). */
function changeFor(cur: Relation, outcome: Outcome, request: Element): RelationChange | undefined {
  const f = fieldsOf(outcome.next);
  const c: RelationChange = {};
  if (f.subscription !== cur.subscription) c.subscription = f.subscription;
  if (f.pendingOut !== cur.ask) c.ask = f.pendingOut;
  if (f.pendingIn && cur.pendingIn === undefined) c.pendingIn = request.toString();
  if (!f.pendingIn && cur.pendingIn !== undefined) c.pendingIn = null;
  if (outcome.approved !== undefined && outcome.approved !== cur.approved) c.approved = outcome.approved;
  return Object.keys(c).length > 0 ? c : undefined;
}

/** A stanza's direct children in the jabber:client namespace (no xmlns of their own) named `name`. */
function clientChildren(stanza: Element, name: string): Element[] {
  return stanza.getChildren(name).filter((c) => c.attrs.xmlns === undefined || c.attrs.xmlns === 'jabber:client');
}

/** RFC 6121 §4.7.2.3: an integer from -128 to +127, 0 when absent. */
function parsePriority(stanza: Element): number {
  const els = clientChildren(stanza, 'priority');
  if (els.length === 0) return 0;
  if (els.length > 1) throw new StanzaError('bad-request', 'Presence carries at most one <priority/>');
  const text = els[0]!.text().trim();
  const n = /^[+-]?\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(n >= -128 && n <= 127)) throw new StanzaError('bad-request', 'The priority must be an integer from -128 to 127');
  return n;
}

/** RFC 6121 §4.7.2.1: at most one <show/>, with one of the four defined values. */
function checkShow(stanza: Element): void {
  const els = clientChildren(stanza, 'show');
  if (els.length > 1) throw new StanzaError('bad-request', 'Presence carries at most one <show/>');
  if (els.length === 1 && !SHOW_VALUES.has(els[0]!.text().trim())) {
    throw new StanzaError('bad-request', 'The show value must be away, chat, dnd or xa');
  }
}

class Presence {
  constructor(
    private readonly api: ModuleApi<PresenceOptions>,
    private readonly roster: RosterService,
    readonly store: PresenceStore,
  ) {}

  // ---- from the user's clients ----------------------------------------------

  async outbound(session: Session, stanza: Element, to: Jid | undefined): Promise<void> {
    const type = stanza.attrs.type;
    if (type === undefined || type === 'unavailable') {
      if (to === undefined) return this.broadcast(session, stanza, type === undefined);
      return this.directed(session, stanza, to, type === undefined);
    }
    if (isSubscriptionType(type)) return this.outboundSubscription(session, stanza, to, type);
    if (type === 'probe' || type === 'error') {
      // Client probes (XEP-0318) and presence errors go out as addressed.
      if (to === undefined) throw new StanzaError('bad-request', `A presence of type ${type} needs a 'to' address`);
      return this.api.route(stanza);
    }
    throw new StanzaError('bad-request', `Unknown presence type "${type}"`);
  }

  /** RFC 6121 §4.2.2 (initial), §4.4.2 (subsequent) and §4.5.2 (unavailable) broadcast presence. */
  private async broadcast(session: Session, stanza: Element, available: boolean): Promise<void> {
    const user = session.jid.bareString;
    const self = session.jid.toString();
    const presence = stanza.withAttrs({ to: undefined, from: self });
    const wasAvailable = session.presence !== undefined;
    let priority = 0;
    if (available) {
      checkShow(stanza);
      priority = parsePriority(stanza);
    }

    // Written before anything is awaited: see rememberUnavailable.
    const remembered = !available && wasAvailable
      ? this.rememberUnavailable(session, clientChildren(stanza, 'status')).catch((err: unknown) => {
        this.api.log.error({ err, user }, 'could not store the last unavailable presence');
      })
      : undefined;
    const subscribers = wasAvailable || available ? await this.subscribers(user) : [];
    if (available) {
      session.presence = presence;
      session.priority = priority;
    }
    // To every contact subscribed to the user's presence, from the full JID.
    for (const contact of subscribers) await this.api.route(presence.withAttrs({ to: contact }));
    // And to all of the user's available resources, this one included (implicit self-subscription).
    if (available || wasAvailable) {
      for (const s of this.api.sessions.ofAccount(user)) if (s.presence) s.send(presence.withAttrs({ to: s.jid.toString() }));
    }

    if (!available) {
      // §4.6.3: unavailable also goes to everyone that got directed presence; then it is forgotten.
      const state = this.state(session);
      const sent = new Set(subscribers);
      for (const target of state.directed) {
        const bare = Jid.tryParse(target)?.bareString;
        if (wasAvailable && bare !== undefined && sent.has(bare)) continue;
        await this.api.route(presence.withAttrs({ to: target }));
      }
      state.directed.clear();
      session.presence = undefined;
      session.priority = 0;
      await remembered;
      return;
    }
    if (wasAvailable) return;

    // Initial presence.
    // The user's other available resources tell the new one their presence.
    for (const s of this.api.sessions.ofAccount(user)) {
      if (s !== session && s.presence) session.send(s.presence.withAttrs({ to: self }));
    }
    // §4.3.1: probe the contacts the user is subscribed to, from the bare JID.
    for (const item of await this.roster.items(user)) {
      if (item.subscription === 'to' || item.subscription === 'both') {
        await this.api.route(x('presence', { type: 'probe', from: user, to: item.jid }));
      }
    }
    // §3.1.3: unanswered subscription requests are delivered once the user is available.
    for (const r of await this.roster.pendingRequests(user)) session.send(this.requestStanza(user, r));
    // §4.2: the first available presence; offline messages (XEP-0160) flow now.
    await this.api.fire('presence/initial', { session });
  }

  /** RFC 6121 §4.6.2: directed presence is routed as addressed and remembered for §4.6.3. */
  private async directed(session: Session, stanza: Element, to: Jid, available: boolean): Promise<void> {
    const user = session.jid.bareString;
    const state = this.state(session);
    const key = to.toString();
    await this.api.route(stanza);
    if (!available) {
      state.directed.delete(key);
      return;
    }
    if (to.bareString === user) return;
    // A subscriber gets the broadcast unavailable anyway, as long as this session is available.
    const sub = await this.roster.subscription(user, to.bareString);
    if (session.presence !== undefined && (sub === 'from' || sub === 'both')) return;
    state.directed.add(key);
  }

  /** RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4 and §A.2: subscription stanzas from the user. */
  private async outboundSubscription(session: Session, stanza: Element, to: Jid | undefined, type: SubscriptionStanza): Promise<void> {
    if (to === undefined) throw new StanzaError('bad-request', `A presence of type ${type} needs a 'to' address`);
    const user = session.jid.bareString;
    const contact = to.bareString;
    if (contact === user) throw new StanzaError('not-allowed', 'An account is always subscribed to its own presence');
    // Stamped with the user's bare JID and addressed to the contact's bare JID (§3.1.2).
    const stamped = stanza.withAttrs({ from: user, to: contact });
    let before: SubscriptionState = 'None';
    let outcome: Outcome | undefined;
    await this.roster.modify(user, contact, (cur) => {
      before = stateOfRelation(cur);
      outcome = outbound(type, before, { approved: cur.approved, preApproval: this.api.options.preApproval });
      return changeFor(cur, outcome, stamped);
    });
    if (!outcome?.forward) return;
    await this.api.route(stamped);
    if (type === 'subscribed') {
      // §3.1.5: the new subscriber gets the user's current presence from each available resource.
      await this.sendPresenceOfUser(user, contact);
    } else if (type === 'unsubscribed' && contactSubscribed(before) && !contactSubscribed(outcome.next)) {
      // §3.2.2: the former subscriber learns that the user is now unavailable to it.
      await this.sendUnavailableOfUser(user, contact);
    }
  }

  // ---- to the user, from anyone ---------------------------------------------

  /** Returns true when the stanza was handled here (subscriptions and probes). */
  async inbound(stanza: Element, to: Jid, from: Jid): Promise<boolean> {
    const type = stanza.attrs.type;
    if (isSubscriptionType(type)) {
      await this.inboundSubscription(stanza, to.bareString, from.bareString, type);
      return true;
    }
    if (type === 'probe') {
      await this.probe(to.bareString, from, stanza);
      return true;
    }
    return false;
  }

  /** RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3 and §A.3: subscription stanzas from a contact. */
  private async inboundSubscription(stanza: Element, user: string, contact: string, type: SubscriptionStanza): Promise<void> {
    if (user === contact) return;
    if (!(await this.api.accounts.exists(user))) {
      // §3.1.3: a request for an account that does not exist is answered with "unsubscribed".
      if (type === 'subscribe') await this.api.route(x('presence', { type: 'unsubscribed', from: user, to: contact }));
      return;
    }
    const stamped = stanza.withAttrs({ from: contact, to: user });
    let before: SubscriptionState = 'None';
    let outcome: Outcome | undefined;
    await this.roster.modify(user, contact, (cur) => {
      before = stateOfRelation(cur);
      outcome = inbound(type, before, { approved: cur.approved });
      return changeFor(cur, outcome, stamped);
    });
    if (!outcome) return;
    if (outcome.forward) this.deliverToAvailable(user, stamped);
    if (outcome.autoReply === 'subscribed') {
      // Already subscribed (§A.3.1) or pre-approved (§3.4): the server approves for the user,
      // then sends the user's presence as an approval by the user would (§3.1.5).
      await this.api.route(x('presence', { type: 'subscribed', from: user, to: contact }));
      await this.sendPresenceOfUser(user, contact);
    } else if (type === 'unsubscribe' && contactSubscribed(before) && !contactSubscribed(outcome.next)) {
      // §3.3.3: the contact no longer receives the user's presence: it gets unavailable.
      await this.sendUnavailableOfUser(user, contact);
    }
  }

  /** RFC 6121 §4.3.2: a presence probe for the user. */
  private async probe(user: string, prober: Jid, stanza: Element): Promise<void> {
    const replyTo = stanza.attrs.from ?? prober.toString();
    const contact = prober.bareString;
    let allowed = false;
    if (await this.api.accounts.exists(user)) {
      const sub = contact === user ? 'both' : await this.roster.subscription(user, contact);
      allowed = sub === 'from' || sub === 'both';
    }
    if (!allowed) {
      // Not subscribed (or no such account): nothing about the user's presence is revealed.
      await this.api.route(x('presence', { type: 'unsubscribed', from: user, to: contact }));
      return;
    }
    const available = this.api.sessions.ofAccount(user).filter((s) => s.presence !== undefined);
    if (available.length > 0) {
      for (const s of available) await this.api.route(s.presence!.withAttrs({ from: s.jid.toString(), to: replyTo }));
      return;
    }
    // No available resource: the last unavailable presence, from the bare JID, stamped with
    // when it was received (XEP-0203).
    const last = await this.store.lastUnavailable(user);
    let reply = x('presence', { type: 'unavailable', from: user, to: replyTo });
    if (last) {
      try {
        const stored = parseXml(last.xml);
        reply = stored.withAttrs({ xmlns: undefined, type: 'unavailable', from: user, to: replyTo });
        reply.children = [
          ...stored.children,
          x('delay', { xmlns: NS_DELAY, from: Jid.parse(user).domain, stamp: new Date(last.at).toISOString() }),
        ];
      } catch (err) {
        this.api.log.warn({ err, user }, 'stored unavailable presence is unreadable');
      }
    }
    await this.api.route(reply);
  }

  // ---- session end ----------------------------------------------------------

  /**
   * RFC 6121 §4.5.2 (and §4.6.3): a session that ends while available is an unavailable
   * broadcast from its full JID, to subscribers, the user's other resources and everyone
   * that got directed presence.
   */
  async closed(session: Session): Promise<void> {
    const state = this.state(session);
    if (session.presence === undefined && state.directed.size === 0) return;
    await this.broadcast(session, x('presence', { type: 'unavailable' }), false);
  }

  // ---- helpers --------------------------------------------------------------

  private state(session: Session): SessionState {
    let s = session.data.get(this.api.name) as SessionState | undefined;
    if (!s) {
      s = { directed: new Set() };
      session.data.set(this.api.name, s);
    }
    return s;
  }

  /** Bare JIDs of the contacts subscribed to the user's presence ('from' or 'both'). */
  private async subscribers(user: string): Promise<string[]> {
    return (await this.roster.items(user)).filter((i) => i.subscription === 'from' || i.subscription === 'both').map((i) => i.jid);
  }

  private deliverToAvailable(user: string, stanza: Element): void {
    for (const s of this.api.sessions.ofAccount(user)) if (s.presence) s.send(stanza);
  }

  private async sendPresenceOfUser(user: string, contact: string): Promise<void> {
    for (const s of this.api.sessions.ofAccount(user)) {
      if (s.presence) await this.api.route(s.presence.withAttrs({ from: s.jid.toString(), to: contact }));
    }
  }

  private async sendUnavailableOfUser(user: string, contact: string): Promise<void> {
    for (const s of this.api.sessions.ofAccount(user)) {
      if (s.presence) await this.api.route(x('presence', { type: 'unavailable', from: s.jid.toString(), to: contact }));
    }
  }

  /** The stored request, or a plain one when it cannot be read back. */
  private requestStanza(user: string, r: Relation): Element {
    try {
      if (r.pendingIn !== undefined) return parseXml(r.pendingIn).withAttrs({ xmlns: undefined, type: 'subscribe', from: r.jid, to: user });
    } catch (err) {
      this.api.log.warn({ err, user, contact: r.jid }, 'stored subscription request is unreadable');
    }
    return x('presence', { type: 'subscribe', from: r.jid, to: user });
  }

  /**
   * Keeps the unavailable presence of an account whose last available resource left (for
   * probes). The row is written at once and dropped again if the account turns out to be
   * gone: a session closed by an account deletion ends before user/deleted removes the
   * account's data, or after the account itself is gone.
   */
  private async rememberUnavailable(session: Session, status: Element[]): Promise<void> {
    const user = session.jid.bareString;
    if (this.api.sessions.ofAccount(user).some((s) => s !== session && s.presence !== undefined)) return;
    const xml = x('presence', { type: 'unavailable', from: user }, status).toString();
    await this.store.setLastUnavailable(user, { xml, at: Date.now() });
    if (!(await this.api.accounts.exists(user))) await this.store.deleteUser(user);
  }
}
