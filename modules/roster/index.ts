// RFC 6121 §2: Roster management (jabber:iq:roster), with roster versioning (§2.6) and pushes.
import { randomBytes } from 'node:crypto';
import { defineModule, Jid, StanzaError, x, type Element, type IqRequest, type ModuleApi } from '../../src';
import { ROSTER_MIGRATIONS, SqliteRosterStore, type RosterStore, type StoredRelation, type Subscription } from './store';

export type { Subscription } from './store';

export const NS_ROSTER = 'jabber:iq:roster';
/** RFC 6121 §2.6.1: the stream feature announcing roster versioning. */
export const NS_ROSTERVER = 'urn:xmpp:features:rosterver';

/** A roster item as clients see it (RFC 6121 §2.1.2). */
export interface RosterItem {
  /** The contact's bare JID. */
  readonly jid: string;
  readonly name?: string;
  readonly subscription: Subscription;
  /** ask='subscribe': the user's subscription request awaits the contact's answer ("Pending Out"). */
  readonly ask: boolean;
  /** approved='true': the user pre-approved the contact's subscription (RFC 6121 §3.4). */
  readonly approved: boolean;
  readonly groups: readonly string[];
}

/**
 * The whole relationship with a contact, including state clients do not see as a roster item:
 * an unanswered inbound subscription request ("Pending In"), which exists before (and without)
 * the contact being on the roster.
 */
export interface Relation extends RosterItem {
  /** The contact's unanswered subscription request, as XML (to deliver again at next login). */
  readonly pendingIn?: string;
  /** False when the contact is only known through a pending request (not in roster results). */
  readonly inRoster: boolean;
}

/** Subscription fields to change; `pendingIn: null` clears the pending request. */
export interface RelationChange {
  subscription?: Subscription;
  ask?: boolean;
  approved?: boolean;
  pendingIn?: string | null;
}

/** The roster as other modules use it (`api.service('roster')`). All JIDs are bare JID strings. */
export interface RosterService {
  /** The roster item for `contact` in `user`'s roster (not a mere pending request). */
  get(user: string, contact: string): Promise<RosterItem | undefined>;
  /** `user`'s subscription state with `contact`: 'from'/'both' mean the contact receives the user's presence. */
  subscription(user: string, contact: string): Promise<Subscription>;
  /** `user`'s roster, ordered by JID. */
  items(user: string): Promise<RosterItem[]>;
  /** The current roster version string (RFC 6121 §2.6). */
  version(user: string): Promise<string>;
  /** The full relationship (a 'none' relation with inRoster false when nothing is stored). */
  relation(user: string, contact: string): Promise<Relation>;
  /** Relations with an unanswered inbound subscription request, oldest first (RFC 6121 §3.1.3). */
  pendingRequests(user: string): Promise<Relation[]>;
  /**
   * Reads and changes one relation atomically (per-user serialised). `change` sees the current
   * relation and returns the fields to change, or undefined for none; it must not route
   * stanzas (do that after modify resolves). A change that the user sees (subscription, ask,
   * approved, or the item appearing) advances the roster version and is pushed to all
   * interested resources. Throws StanzaError('not-allowed') when the change would put a new
   * item on a full roster.
   */
  modify(user: string, contact: string, change: (current: Relation) => RelationChange | undefined): Promise<{ before: Relation; after: Relation }>;
  /**
   * Removes the contact as a roster set with subscription='remove' does (RFC 6121 §2.5):
   * push to interested resources, then cancel the subscriptions in both directions. False
   * when the contact is not on the roster.
   */
  remove(user: string, contact: string): Promise<boolean>;
}

declare module '../../src/module' {
  interface ServiceMap {
    roster: RosterService;
  }
}

export interface RosterOptions {
  /** Items per roster; adding one more is refused with <not-allowed/>. Pending inbound requests have the same cap. */
  maxItems: number;
  /** RFC 6121 §2.3.3: longer 'name' attributes are refused with <not-acceptable/>. */
  maxNameLength: number;
  /** RFC 6121 §2.3.3: longer group names are refused with <not-acceptable/>. */
  maxGroupLength: number;
}

/** The roster item element for results and pushes (RFC 6121 §2.1.2). */
export function rosterItemElement(item: RosterItem): Element {
  return x(
    'item',
    {
      jid: item.jid,
      name: item.name,
      subscription: item.subscription,
      ask: item.ask ? 'subscribe' : undefined,
      approved: item.approved ? 'true' : undefined,
    },
    item.groups.map((g) => x('group', null, g)),
  );
}

export default defineModule<RosterOptions>({
  name: 'roster',
  features: [NS_ROSTER],
  // RFC 6121 §2.6.1: announces roster versioning after authentication.
  streamFeatures: [x('ver', { xmlns: NS_ROSTERVER })],
  defaults: { maxItems: 1000, maxNameLength: 1023, maxGroupLength: 1023 },
  migrations: ROSTER_MIGRATIONS,
  setup(api) {
    const roster = new Roster(api, new SqliteRosterStore(api.db));
    api.provide('roster', roster);

    api.iq('get', NS_ROSTER, 'query', (req) => roster.handleGet(req), 'self');
    api.iq('set', NS_ROSTER, 'query', (req) => roster.handleSet(req), 'self');
    // RFC 6121 §2.3.3 (and §2.1.3 for gets): only the account itself may read or change its roster.
    const forbidden = (): never => {
      throw new StanzaError('forbidden', 'Only the account itself can use its roster');
    };
    api.iq('get', NS_ROSTER, 'query', forbidden, 'account');
    api.iq('set', NS_ROSTER, 'query', forbidden, 'account');

    api.hook('user/deleted', async ({ jid }) => {
      await roster.deleteUser(jid.bareString);
    });
  },
});

function toItem(r: StoredRelation): RosterItem {
  return { jid: r.contact, name: r.name, subscription: r.subscription, ask: r.ask, approved: r.approved, groups: r.groups };
}

function toRelation(r: StoredRelation): Relation {
  return { ...toItem(r), pendingIn: r.pendingIn, inRoster: r.inRoster };
}

function toStored(r: Relation): StoredRelation {
  return {
    contact: r.jid,
    name: r.name,
    subscription: r.subscription,
    ask: r.ask,
    approved: r.approved,
    pendingIn: r.pendingIn,
    inRoster: r.inRoster,
    groups: r.groups,
  };
}

function emptyRelation(contact: string): Relation {
  return { jid: contact, subscription: 'none', ask: false, approved: false, groups: [], inRoster: false };
}

/** True when roster results would show a difference between a and b. */
function visiblyDifferent(a: Relation, b: Relation): boolean {
  return (
    a.inRoster !== b.inRoster ||
    a.name !== b.name ||
    a.subscription !== b.subscription ||
    a.ask !== b.ask ||
    a.approved !== b.approved ||
    a.groups.length !== b.groups.length ||
    a.groups.some((g, i) => g !== b.groups[i])
  );
}

class Roster implements RosterService {
  /** Per-user tail of the chain of pending read-modify-write operations. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(private readonly api: ModuleApi<RosterOptions>, private readonly store: RosterStore) {}

  // ---- service --------------------------------------------------------------

  async get(user: string, contact: string): Promise<RosterItem | undefined> {
    const r = await this.store.get(user, contact);
    return r?.inRoster ? toItem(r) : undefined;
  }

  async subscription(user: string, contact: string): Promise<Subscription> {
    return (await this.store.get(user, contact))?.subscription ?? 'none';
  }

  async items(user: string): Promise<RosterItem[]> {
    return (await this.store.items(user)).map(toItem);
  }

  version(user: string): Promise<string> {
    return this.store.version(user);
  }

  async relation(user: string, contact: string): Promise<Relation> {
    const r = await this.store.get(user, contact);
    return r ? toRelation(r) : emptyRelation(contact);
  }

  async pendingRequests(user: string): Promise<Relation[]> {
    return (await this.store.pending(user)).map(toRelation);
  }

  modify(user: string, contact: string, change: (current: Relation) => RelationChange | undefined): Promise<{ before: Relation; after: Relation }> {
    return this.locked(user, async () => {
      const stored = await this.store.get(user, contact);
      const before = stored ? toRelation(stored) : emptyRelation(contact);
      const c = change(before);
      if (!c) return { before, after: before };
      const next = {
        subscription: c.subscription ?? before.subscription,
        ask: c.ask ?? before.ask,
        approved: c.approved ?? before.approved,
        pendingIn: c.pendingIn === null ? undefined : (c.pendingIn ?? before.pendingIn),
      };
      // An item joins the roster once a subscription, a request of the user's or a pre-approval
      // exists; a pending inbound request alone does not make it an item (RFC 6121 §A.1).
      const inRoster = before.inRoster || next.subscription !== 'none' || next.ask || next.approved;
      const after: Relation = { ...before, ...next, inRoster };
      if (!after.inRoster && after.pendingIn === undefined) {
        if (stored) await this.store.remove(user, contact, false);
        return { before, after };
      }
      if (!stored || (!before.inRoster && after.inRoster)) await this.checkRoom(user, after.inRoster);
      if (visiblyDifferent(before, after)) {
        const ver = await this.store.put(user, toStored(after), true);
        this.push(user, rosterItemElement(after), ver);
      } else if (after.pendingIn !== before.pendingIn || !stored) {
        await this.store.put(user, toStored(after), false);
      }
      return { before, after };
    });
  }

  async remove(user: string, contact: string): Promise<boolean> {
    const removed = await this.locked(user, async () => {
      const stored = await this.store.get(user, contact);
      if (!stored?.inRoster) return undefined;
      const ver = await this.store.remove(user, contact, true);
      this.push(user, x('item', { jid: contact, subscription: 'remove' }), ver);
      return stored;
    });
    if (!removed) return false;
    await this.cancelSubscriptions(user, removed);
    return true;
  }

  // ---- protocol -------------------------------------------------------------

  /** RFC 6121 §2.1.3 roster get, with versioning (§2.6.3). */
  async handleGet(req: IqRequest): Promise<Element | void> {
    const user = req.to.bareString;
    // §2.2: a resource that asked for the roster is "interested" and gets pushes from now on.
    if (req.session) req.session.rosterRequested = true;
    const ver = await this.store.version(user);
    // §2.6.3: the client's cached version is current: an empty result, changes come as pushes.
    if (req.payload.attrs.ver !== undefined && req.payload.attrs.ver === ver) return;
    const items = await this.store.items(user);
    return x('query', { xmlns: NS_ROSTER, ver }, items.map((r) => rosterItemElement(toItem(r))));
  }

  /** RFC 6121 §2.1.5 roster set: add or update (§2.3, §2.4) or remove (§2.5) one item. */
  async handleSet(req: IqRequest): Promise<void> {
    const user = req.to.bareString;
    const { options } = this.api;
    const children = req.payload.elements;
    // §2.3.3: exactly one <item/> per roster set.
    if (children.length !== 1) throw new StanzaError('bad-request', 'A roster set carries exactly one item');
    const item = children[0]!;
    if (!item.is('item') || (item.attrs.xmlns !== undefined && item.attrs.xmlns !== NS_ROSTER)) {
      throw new StanzaError('bad-request', 'A roster set carries one <item/>');
    }
    const jidAttr = item.attrs.jid;
    if (jidAttr === undefined) throw new StanzaError('bad-request', 'The item has no jid attribute');
    const jid = Jid.tryParse(jidAttr);
    if (!jid || jid.resource !== '') throw new StanzaError('jid-malformed', 'The item jid must be a valid bare JID');
    const contact = jid.bareString;
    // The account's own presence is implicitly subscribed (RFC 6121 §4.2.2): no item for it.
    if (contact === user) throw new StanzaError('not-allowed', 'The account itself cannot be a roster item');

    // §2.1.2.5: in a roster set the server ignores any 'subscription' value but "remove";
    // §2.1.2.1/§2.1.2.2: 'approved' and 'ask' are ignored too.
    if (item.attrs.subscription === 'remove') {
      if (!(await this.remove(user, contact))) throw new StanzaError('item-not-found', 'The item is not in the roster');
      return;
    }

    const nameAttr = item.attrs.name;
    const name = nameAttr === undefined || nameAttr === '' ? undefined : nameAttr;
    if (name !== undefined && [...name].length > options.maxNameLength) {
      throw new StanzaError('not-acceptable', `The name is longer than ${options.maxNameLength} characters`);
    }
    const groups: string[] = [];
    // <group/> children in the item's namespace (inherited from <query/>, so usually no xmlns of their own).
    const groupElements = item.getChildren('group').filter((g) => g.attrs.xmlns === undefined || g.attrs.xmlns === NS_ROSTER);
    for (const g of groupElements) {
      const text = g.text();
      if (text === '') throw new StanzaError('not-acceptable', 'A group name cannot be empty');
      if ([...text].length > options.maxGroupLength) {
        throw new StanzaError('not-acceptable', `A group name is longer than ${options.maxGroupLength} characters`);
      }
      if (groups.includes(text)) throw new StanzaError('bad-request', `The group "${text}" is listed twice`);
      groups.push(text);
    }

    await this.locked(user, async () => {
      const stored = await this.store.get(user, contact);
      if (!stored?.inRoster) await this.checkRoom(user, true);
      const before = stored ? toRelation(stored) : emptyRelation(contact);
      const after: Relation = { ...before, name, groups, inRoster: true };
      if (stored && !visiblyDifferent(before, after)) {
        // Nothing changed, but §2.3.2/§2.4.2 still ask for a push with the item.
        this.push(user, rosterItemElement(after), await this.store.version(user));
        return;
      }
      const ver = await this.store.put(user, toStored(after), true);
      this.push(user, rosterItemElement(after), ver);
    });
  }

  async deleteUser(user: string): Promise<void> {
    // Like removing every item (RFC 6121 §2.5.3): contacts learn that the subscriptions are gone.
    const rows = await this.locked(user, async () => {
      const all = [...(await this.store.items(user)), ...(await this.store.pending(user)).filter((r) => !r.inRoster)];
      await this.store.deleteUser(user);
      return all;
    });
    for (const r of rows) await this.cancelSubscriptions(user, r);
  }

  // ---- helpers --------------------------------------------------------------

  /**
   * RFC 6121 §2.5.3: removing an item cancels the subscriptions both ways. The contact gets
   * "unsubscribe" when the user was subscribed or asking, "unsubscribed" when the contact was
   * subscribed or asking; once the contact loses its subscription it also gets unavailable
   * presence from the user's available resources (as for any "unsubscribed", §3.2.2).
   */
  private async cancelSubscriptions(user: string, r: StoredRelation): Promise<void> {
    const to = r.subscription === 'to' || r.subscription === 'both';
    const from = r.subscription === 'from' || r.subscription === 'both';
    if (to || r.ask) await this.api.route(x('presence', { type: 'unsubscribe', from: user, to: r.contact }));
    if (from || r.pendingIn !== undefined) await this.api.route(x('presence', { type: 'unsubscribed', from: user, to: r.contact }));
    if (from) {
      for (const s of this.api.sessions.ofAccount(user)) {
        if (s.presence) await this.api.route(x('presence', { type: 'unavailable', from: s.jid.toString(), to: r.contact }));
      }
    }
  }

  private async checkRoom(user: string, inRoster: boolean): Promise<void> {
    const max = this.api.options.maxItems;
    if ((await this.store.count(user, inRoster)) < max) return;
    throw new StanzaError('not-allowed', inRoster ? `The roster is full (at most ${max} items)` : `Too many pending subscription requests (at most ${max})`);
  }

  /** RFC 6121 §2.1.6: a roster push to every interested resource of the account. */
  private push(user: string, item: Element, ver: string): void {
    for (const s of this.api.sessions.ofAccount(user)) {
      if (!s.rosterRequested) continue;
      s.send(x('iq', { type: 'set', id: 'push-' + randomBytes(6).toString('hex'), to: s.jid.toString() }, x('query', { xmlns: NS_ROSTER, ver }, item)));
    }
  }

  /** Runs `fn` after every earlier operation on `user`'s roster has finished. */
  private async locked<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(user) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => done);
    this.locks.set(user, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(user) === tail) this.locks.delete(user);
    }
  }
}
