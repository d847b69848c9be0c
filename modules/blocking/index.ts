// XEP-0191: Blocking Command (urn:xmpp:blocking), with the JID matching rules of XEP-0016.
import { defineModule, Jid, Priority, StanzaError, x, type Element } from '../../src';
import { isBlockedBy, itemMatches } from './match';
import { BLOCKING_MIGRATIONS, SqliteBlockingStore, type BlockingStore } from './store';
import type {} from '../roster'; // the 'roster' service type (optional at run time)

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

export { isBlockedBy, itemMatches } from './match';

/** What other modules may ask about blocklists (presence broadcast, search, invitations ...). */
export interface BlockingService {
  /** True when the account (bare JID string) has blocked `other`, by the XEP-0191 matching rules. */
  isBlocked(account: string, other: Jid): Promise<boolean>;
  /** True when the blocklist item `item` covers `other` (e.g. to find the contacts a domain item blocks). */
  matches(item: Jid, other: Jid): boolean;
}

declare module '../../src/module' {
  interface ServiceMap {
    blocking: BlockingService;
  }
}

declare module '../../src/hooks' {
  interface HookMap {
    /**
     * An account's blocklist changed: `blocked` were added, `unblocked` removed (all of them for
     * "unblock all"). Fired after the change is stored and pushed, and after the presence that
     * XEP-0191 §3.3/§3.4 require was sent to subscribed contacts.
     */
    'blocklist/changed': { jid: Jid; blocked: readonly Jid[]; unblocked: readonly Jid[] };
  }
}

export interface BlockingOptions {
  /** Most JIDs one account may block (block a domain to block many). */
  maxItems: number;
  /** Blocklists kept in memory (least recently used dropped first); every routed stanza consults one or two. */
  cacheSize: number;
}

const NAME = 'blocking';
const EMPTY: ReadonlySet<string> = new Set();

export default defineModule<BlockingOptions>({
  name: NAME,
  features: [NS_BLOCKING],
  migrations: BLOCKING_MIGRATIONS,
  defaults: { maxItems: 1000, cacheSize: 10_000 },
  setup(api) {
    const store = new SqliteBlockingStore(api.db);
    const cache = new BlocklistCache(store, api.options.cacheSize);
    let pushCount = 0;

    /** Runs `fn` on the account's blocklist: synchronously when cached (the common case). */
    function withList<T>(account: string, fn: (list: ReadonlySet<string>) => T | Promise<T>): T | Promise<T> {
      const list = cache.peek(account);
      return list ? fn(list) : cache.load(account).then(fn);
    }

    /** The server itself is never blocked, nor is an account by itself. */
    function exempt(account: Jid, other: Jid): boolean {
      return other.bareString === account.bareString || (other.local === '' && api.isLocalDomain(other.domain));
    }

    /** §3.3 and §3.4: pushes go to every resource of the account that has retrieved the blocklist. */
    function push(account: string, command: Element): void {
      for (const s of api.sessions.ofAccount(account)) {
        if (s.data.get(NAME) !== true) continue;
        s.send(x('iq', { type: 'set', id: `blocklist-push-${++pushCount}`, to: s.jid.toString() }, command));
      }
    }

    /**
     * Contacts in the roster that receive the user's presence ('from' or 'both') and that one of
     * `items` covers, as the JIDs to send presence to. Without the roster module, nobody does.
     */
    async function subscribersCoveredBy(user: string, items: readonly Jid[]): Promise<Jid[]> {
      const roster = api.service('roster');
      if (roster === undefined || items.length === 0) return [];
      const subscribers: Jid[] = [];
      for (const item of await roster.items(user)) {
        if (item.subscription !== 'from' && item.subscription !== 'both') continue;
        const jid = Jid.tryParse(item.jid);
        if (jid !== undefined) subscribers.push(jid);
      }
      const out = new Map<string, Jid>();
      for (const item of items) {
        if (item.local !== '' && item.resource !== '') {
          // A full JID item: that resource of a subscribed contact.
          if (subscribers.some((c) => c.bareString === item.bareString)) out.set(item.toString(), item);
          continue;
        }
        for (const contact of subscribers) if (itemMatches(item, contact)) out.set(contact.toString(), contact);
      }
      return [...out.values()];
    }

    /**
     * §3.3: "When the user blocks communications with the contact, the user's server MUST send
     * unavailable presence information to the contact (but only if the contact is allowed to
     * receive presence notifications from the user)"; §3.4: on unblock, "the user's current
     * presence information". Contacts that `stillBlocked` covers (blocked before, or still
     * blocked by another item) are left alone.
     */
    async function sendPresence(user: Jid, items: readonly Jid[], available: boolean, stillBlocked: ReadonlySet<string>): Promise<void> {
      const contacts = (await subscribersCoveredBy(user.bareString, items)).filter((c) => !isBlockedBy(stillBlocked, c));
      for (const contact of contacts) {
        for (const s of api.sessions.ofAccount(user.bareString)) {
          if (s.presence === undefined) continue;
          const to = contact.toString();
          const from = s.jid.toString();
          await api.route(available ? s.presence.withAttrs({ from, to }) : x('presence', { type: 'unavailable', from, to }));
        }
      }
    }

    // §3.2: the blocklist. Retrieving it marks the session as interested in pushes.
    api.iq('get', NS_BLOCKING, 'blocklist', async ({ to, session }) => {
      const list = await cache.load(to.bareString);
      session?.data.set(NAME, true);
      return x('blocklist', { xmlns: NS_BLOCKING }, [...list].sort().map((jid) => x('item', { jid })));
    }, 'self');

    // §3.3: block one or more JIDs.
    api.iq('set', NS_BLOCKING, 'block', async ({ to, payload }) => {
      const items = parseItems(payload);
      if (items.length === 0) throw new StanzaError('bad-request', 'A block command needs at least one item');
      const account = to.bareString;
      const current = await cache.load(account);
      const fresh = items.filter((jid) => !current.has(jid.toString())).length;
      if (current.size + fresh > api.options.maxItems) {
        throw new StanzaError('policy-violation', `A blocklist holds at most ${api.options.maxItems} items`);
      }
      const added = (await store.add(account, items.map(String))).map(parseStored);
      cache.forget(account);
      push(account, x('block', { xmlns: NS_BLOCKING }, items.map(item)));
      if (added.length === 0) return;
      await sendPresence(to.bare(), added, false, current);
      await api.fire('blocklist/changed', { jid: to.bare(), blocked: added, unblocked: [] });
    }, 'self');

    // §3.4 and §3.5: unblock the given JIDs, or everyone when no item is given.
    api.iq('set', NS_BLOCKING, 'unblock', async ({ to, payload }) => {
      const items = parseItems(payload);
      const account = to.bareString;
      const removed = (items.length === 0 ? await store.clear(account) : await store.remove(account, items.map(String))).map(parseStored);
      cache.forget(account);
      push(account, x('unblock', { xmlns: NS_BLOCKING }, items.map(item)));
      if (removed.length === 0) return;
      await sendPresence(to.bare(), removed, true, await cache.load(account));
      await api.fire('blocklist/changed', { jid: to.bare(), blocked: [], unblocked: removed });
    }, 'self');

    // §3.3: "If the user attempts to send an outbound stanza to the contact, the user's server
    // MUST NOT route the stanza to the contact but instead MUST return a <not-acceptable/>
    // error containing an application-specific error condition of <blocked/>."
    api.hook('stanza/outbound', ({ session, stanza, to }) => {
      if (to === undefined || exempt(session.jid, to)) return;
      return withList(session.jid.bareString, (list) => {
        if (!isBlockedBy(list, to)) return;
        const type = stanza.attrs.type;
        // Errors and IQ results are never answered with an error: they just go nowhere.
        if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return true;
        // Refusing or cancelling a subscription still goes through, so that the presence module
        // can settle the roster (a blocked contact's pending request would otherwise come back
        // at every login with no way to refuse it).
        if (stanza.name === 'presence' && (type === 'unsubscribe' || type === 'unsubscribed')) return;
        throw new StanzaError('not-acceptable', undefined, 'cancel', x('blocked', { xmlns: NS_BLOCKING_ERRORS }));
      });
    }, Priority.Policy);

    // Stanzas about to reach a local account. First the recipient's blocklist (§3.3 rules for a
    // blocked contact's stanzas), then the sender's when the sender is local: what the server
    // routes on a user's behalf (presence broadcasts and probes) must not reach a JID the user
    // blocked either; the client's own stanzas were already refused in 'stanza/outbound'.
    api.hook('stanza/inbound', ({ stanza, to, from }) => {
      if (from.bareString === to.bareString) return;
      const senderIsLocal = from.local !== '' && api.isLocalDomain(from.domain);
      return withList(to.bareString, (recipientList) => {
        if (!exempt(to, from) && isBlockedBy(recipientList, from)) return refuseFromBlocked(stanza);
        if (!senderIsLocal) return;
        return withList(from.bareString, (senderList) => {
          if (!isBlockedBy(senderList, to)) return;
          const type = stanza.attrs.type;
          if (stanza.name === 'presence' && (type === 'unavailable' || type === 'unsubscribe' || type === 'unsubscribed')) return;
          return true;
        });
      });
    }, Priority.Policy);

    api.hook('user/deleted', async ({ jid }) => {
      await store.clear(jid.bareString);
      cache.forget(jid.bareString);
    });

    api.provide('blocking', {
      isBlocked: async (account, other) => isBlockedBy(await cache.load(account), other),
      matches: itemMatches,
    });
  },
});

/**
 * §3.3, a blocked contact's stanza: "For presence stanzas ... the server MUST NOT respond and
 * MUST NOT return an error. For message stanzas, the server SHOULD return an error, which
 * SHOULD be <service-unavailable/>. For IQ stanzas of type get or set, the server MUST return
 * an error, which SHOULD be <service-unavailable/>. IQ stanzas of other types MUST be silently
 * dropped." Only chat and normal messages are bounced: an error for a groupchat or headline
 * message would go to a room or service, not to a person.
 */
function refuseFromBlocked(stanza: Element): true {
  const type = stanza.attrs.type;
  if (stanza.name === 'message' && (type === undefined || type === 'normal' || type === 'chat')) {
    throw new StanzaError('service-unavailable');
  }
  if (stanza.name === 'iq' && (type === 'get' || type === 'set')) throw new StanzaError('service-unavailable');
  return true;
}

/** The <item jid=''/> children of a block or unblock command, normalised and without duplicates. */
function parseItems(command: Element): Jid[] {
  const out = new Map<string, Jid>();
  for (const el of command.elements) {
    if (el.name !== 'item' || (el.attrs.xmlns !== undefined && el.attrs.xmlns !== NS_BLOCKING)) {
      throw new StanzaError('bad-request', `Unexpected <${el.name}/> in <${command.name}/>`);
    }
    const attr = el.attrs.jid;
    if (attr === undefined) throw new StanzaError('bad-request', 'An item needs a jid attribute');
    const jid = Jid.tryParse(attr);
    if (jid === undefined) throw new StanzaError('jid-malformed', `"${attr}" is not a valid JID`);
    out.set(jid.toString(), jid);
  }
  return [...out.values()];
}

function item(jid: Jid): Element {
  return x('item', { jid: jid.toString() });
}

function parseStored(jid: string): Jid {
  return Jid.parse(jid);
}

/**
 * Blocklists by account, loaded on first use and dropped on change, so the hooks every stanza
 * passes through only touch the database once per account.
 *
 * Past `capacity` lists, one not used since the last eviction goes ("second chance", an
 * approximation of least recently used): a lookup only marks its entry. Keeping the Map in
 * exact use order instead meant deleting and re-adding the entry on every stanza, twice per
 * message, whose churn made V8 rehash the table again and again (2-3 % of the routing
 * thread's time in a chat benchmark).
 */
export class BlocklistCache {
  private readonly lists = new Map<string, { list: ReadonlySet<string>; used: boolean }>();
  private readonly loads = new Map<string, Promise<ReadonlySet<string>>>();

  constructor(private readonly store: Pick<BlockingStore, 'list'>, private readonly capacity: number) {}

  /** The cached list, marked as used; undefined when it has to be loaded. */
  peek(account: string): ReadonlySet<string> | undefined {
    const entry = this.lists.get(account);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.list;
  }

  load(account: string): Promise<ReadonlySet<string>> {
    const cached = this.peek(account);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.loads.get(account);
    if (pending !== undefined) return pending;
    const load: Promise<ReadonlySet<string>> = this.store.list(account).then(
      (jids) => {
        const list = jids.length === 0 ? EMPTY : new Set(jids);
        // A change while loading made this result stale: hand it out, but do not keep it.
        if (this.loads.get(account) === load) {
          this.loads.delete(account);
          if (this.lists.size >= this.capacity) this.evict(); // before: the new list is not up for eviction yet
          this.lists.set(account, { list, used: false });
        }
        return list;
      },
      (err: unknown) => {
        if (this.loads.get(account) === load) this.loads.delete(account);
        throw err;
      },
    );
    this.loads.set(account, load);
    return load;
  }

  forget(account: string): void {
    this.lists.delete(account);
    this.loads.delete(account);
  }

  /**
   * Drops the oldest entry not used since it was last passed over; those used go to the back,
   * unmarked. Ends within one round: by then every entry passed over is unmarked.
   */
  private evict(): void {
    for (const [account, entry] of this.lists) {
      this.lists.delete(account);
      if (!entry.used) return;
      entry.used = false;
      this.lists.set(account, entry); // visited again at the end of this same iteration
    }
  }
}
