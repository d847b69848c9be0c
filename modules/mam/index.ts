// XEP-0313: Message Archive Management (urn:xmpp:mam:2, #extended), with XEP-0359 stanza-ids,
// XEP-0441 preferences, XEP-0431 full-text search, XEP-0059 paging and XEP-0334 storage hints.
import { defineModule, Element, Jid, StanzaError, x, type ModuleApi } from '../../src';
import type {} from '../carbons'; // the 'carbons/copy' hook (optional at run time)
import type {} from '../disco'; // the 'disco' service
import type {} from '../roster'; // the 'roster' service, for default='roster'
import { formatDateTime, NS_FULLTEXT, NS_MAM, NS_RSM, parseQuery, queryForm, type ParsedQuery } from './query';
import { parseXml } from '../../src/xml/parse';
import { archivedText } from './text';
import { archiveFileFor, WorkerMamStore } from './worker-store';
import { MAM_MIGRATIONS, SqliteMamStore, type ArchiveFilter, type ArchivePrefs, type Cursor, type MamStore } from './store';

export { archivedText } from './text';
export { NS_MAM, NS_RSM, NS_DATA, NS_FULLTEXT, FULLTEXT_FIELD, WITHTEXT_FIELD, parseDateTime } from './query';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
/** XEP-0359: Unique and Stable Stanza IDs. */
export const NS_SID = 'urn:xmpp:sid:0';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_DELAY = 'urn:xmpp:delay';
export const NS_HINTS = 'urn:xmpp:hints';
const NS_CLIENT = 'jabber:client';

/** The archive as other modules use it (`api.service('archive')`); the MUC module keeps room archives in it. */
export interface ArchiveService {
  /** Stores a message in owner's archive (owner: a bare account JID or a room JID); returns its XEP-0359 stanza-id (at once when the store can). */
  append(owner: string, entry: { with: string; stanza: Element; direction: 'in' | 'out'; at?: number }): string | Promise<string>;
  /** Runs a XEP-0313 query (the IQ's <query xmlns='urn:xmpp:mam:2'/> payload) on owner's archive, sends the <message><result/></message>s to `requester` (api.route), and resolves with the <fin/> element to return; throws StanzaError for bad queries. */
  query(owner: string, query: Element, requester: Jid): Promise<Element>;
  /** Deletes owner's whole archive (a destroyed room, a deleted account). */
  remove(owner: string): Promise<void>;
}

declare module '../../src/module' {
  interface ServiceMap {
    archive: ArchiveService;
  }
}

export interface MamOptions {
  /** Messages older than this many days are deleted, from every archive; null keeps them. */
  expireDays: number | null;
  /** Most messages one query page returns (XEP-0059 <max/> above it is lowered to it). */
  maxPageSize: number;
}

/** Result set counts (XEP-0059 <count/>, the 'index' of <first/>) are left out above this: counting is a walk. */
const COUNT_CAP = 5_000;
const EXPIRE_EVERY_MS = 60_000;
/** Messages deleted per retention run, so that one run never holds the database long. */
const EXPIRE_BATCH = 10_000;
const PREFS_CACHE = 10_000;
const DEFAULT_PREFS: ArchivePrefs = { default: 'always', always: [], never: [] };
/** Most JIDs in each preferences list. */
const MAX_PREFS_JIDS = 1000;

/** A loaded instance, so that the module's teardown can finish what the unloaded one queued. */
interface Instance {
  readonly api: ModuleApi<MamOptions>;
  readonly service: ArchiveService;
  readonly store: MamStore;
  readonly undo: (() => void)[];
}
const live = new Set<Instance>();

export default defineModule<MamOptions>({
  name: 'mam',
  // Archives belong to accounts, so the mam features are on their disco#info (below); the
  // server stamps stanza-ids on what it archives.
  features: [NS_SID],
  defaults: { expireDays: null, maxPageSize: 250 },
  migrations: MAM_MIGRATIONS,
  async setup(api) {
    const { expireDays, maxPageSize } = api.options;
    if (expireDays !== null && (typeof expireDays !== 'number' || !(expireDays > 0))) {
      throw new Error(`expireDays must be a positive number of days or null, not ${String(expireDays)}`);
    }
    if (!Number.isInteger(maxPageSize) || maxPageSize < 1) throw new Error(`maxPageSize must be a positive integer, not ${String(maxPageSize)}`);

    const onError = (err: unknown, lost: number): void => api.log.error({ err, lost }, 'archiving failed: messages lost');
    // A server database in a file gets an archive file beside it, run by its own thread
    // (worker-store.ts); an in-memory one (tests, throwaway servers) keeps archives in itself.
    const store: MamStore = api.db.memory
      ? new SqliteMamStore(api.db, archivedText, onError)
      : await WorkerMamStore.open(api.db, archiveFileFor(api.db.name), onError);
    const mam = new Archive(api, store, maxPageSize);
    const undo: (() => void)[] = [];
    const disco = api.service('disco');
    if (disco) for (const f of [NS_MAM, NS_MAM_EXTENDED, NS_SID, NS_FULLTEXT]) undo.push(disco.addAccountFeature(f));
    const service: ArchiveService = {
      append: (owner, entry) => {
        const peer = Jid.tryParse(entry.with);
        if (peer === undefined) return Promise.reject(new Error(`archive: "${entry.with}" is not a JID`));
        return mam.append(owner, peer, entry.stanza, entry.direction, entry.at);
      },
      query: (owner, query, requester) => mam.query(owner, query, requester, (el) => mam.sendTo(requester, el)),
      remove: (owner) => mam.removeOwner(owner),
    };
    api.provide('archive', service);
    live.add({ api, service, store, undo });

    /** Archive ids the sender's archive gave outbound messages, for their sent carbons. */
    const outboundIds = new RecentIds();

    // Outbound: a local client's message, archived for the sender. Normal band: after policy
    // (a blocked message is refused and not archived), before carbons copy it. Synchronous
    // unless the preferences or the store need a lookup: every outbound stanza passes here.
    api.hook('stanza/outbound', ({ session, stanza, to }) => {
      if (stanza.name !== 'message') return;
      mam.stripLocalStanzaIds(stanza); // ids "by" this server's accounts are only ever made here
      const owner = session.jid.bareString;
      const peer = to ?? session.jid.bare();
      // A message to the account itself is archived once, when it arrives (below).
      if (peer.bareString === owner || !archivable(stanza)) return;
      const ok = mam.allowed(owner, peer);
      if (ok === true) return noteSent(stanza, mam.append(owner, peer, stanza, 'out'));
      if (ok !== false) return ok.then((yes) => (yes ? noteSent(stanza, mam.append(owner, peer, stanza, 'out')) : undefined));
    });
    // The common case (allowed, id at once) allocates no closure: every message passes here twice.
    const noteSent = (stanza: Element, id: string | Promise<string>): void | Promise<void> =>
      typeof id === 'string' ? void outboundIds.set(stanza, id) : id.then((i) => void outboundIds.set(stanza, i));

    // Inbound: archived for the recipient before delivery (so also when it goes to offline
    // storage), and the copy delivered carries the archive id (XEP-0313 §3.5).
    api.hook('message/inbound', ({ stanza, to, from }) => {
      mam.stripLocalStanzaIds(stanza);
      if (!archivable(stanza)) return;
      const owner = to.bareString;
      if (api.sessions.ofAccount(owner).length > 0) return archiveReceived(stanza, owner, from);
      return api.accounts.exists(owner).then((exists) => (exists ? archiveReceived(stanza, owner, from) : undefined)); // else bounced by the router
    });
    const archiveReceived = (stanza: Element, owner: string, from: Jid): void | Promise<void> => {
      const ok = mam.allowed(owner, from);
      if (ok === true) return stampReceived(stanza, owner, mam.append(owner, from, stanza, 'in'));
      if (ok !== false) return ok.then((yes) => (yes ? stampReceived(stanza, owner, mam.append(owner, from, stanza, 'in')) : undefined));
    };
    const stampReceived = (stanza: Element, owner: string, id: string | Promise<string>): void | Promise<void> => {
      if (typeof id !== 'string') return id.then((i) => stampReceived(stanza, owner, i));
      // An Element of its own literal shape: x() copies the attributes key by key.
      stanza.children.push(new Element('stanza-id', { xmlns: NS_SID, id, by: owner }));
    };

    // XEP-0313 §3.5: "servers SHOULD include the element as a child of the forwarded message
    // when using XEP-0280": the sender's archive id goes in the sent copies, and only there.
    api.hook('carbons/copy', ({ account, direction, original, copy }) => {
      if (direction !== 'sent') return;
      const id = outboundIds.get(original);
      if (id !== undefined) copy.append(x('stanza-id', { xmlns: NS_SID, id, by: account.bareString }));
    });

    // ---- queries (the account's own archive only) ---------------------------------------

    api.iq('set', NS_MAM, 'query', ({ to, payload, session, from }) =>
      mam.query(to.bareString, payload, from, (el) => (session ? session.send(el) : mam.sendTo(from, el))), 'self');
    api.iq('get', NS_MAM, 'query', () => queryForm(), 'self');
    api.iq('get', NS_MAM, 'metadata', ({ to }) => mam.metadata(to.bareString), 'self');
    api.iq('get', NS_MAM, 'prefs', async ({ to }) => prefsElement(await mam.prefs(to.bareString)), 'self');
    api.iq('set', NS_MAM, 'prefs', async ({ to, payload }) => {
      const prefs = parsePrefs(payload);
      await mam.setPrefs(to.bareString, prefs);
      return prefsElement(prefs);
    }, 'self');
    // XEP-0313 §8.1: "If a client requests access to an archive it does not have permissions
    // for the server MUST return an iq with type error, and the error condition SHOULD be 'forbidden'."
    const forbidden = (): never => {
      throw new StanzaError('forbidden', "Only the account itself can use its archive");
    };
    api.iq('set', NS_MAM, 'query', forbidden, 'account');
    api.iq('get', NS_MAM, 'query', forbidden, 'account');
    api.iq('get', NS_MAM, 'metadata', forbidden, 'account');
    api.iq('get', NS_MAM, 'prefs', forbidden, 'account');
    api.iq('set', NS_MAM, 'prefs', forbidden, 'account');

    api.hook('user/deleted', async ({ jid }) => {
      await mam.removeOwner(jid.bareString);
    });

    // Retention: the oldest messages go first, in bounded batches (XEP-0313 §3.2: no holes).
    if (expireDays !== null) {
      api.every(EXPIRE_EVERY_MS, async () => {
        const removed = await store.expire(Date.now() - expireDays * 86_400_000, EXPIRE_BATCH);
        if (removed > 0) api.log.debug({ removed }, 'expired archived messages');
      });
    }
  },
  async teardown() {
    // Registrations are undone by now, the service included: an instance whose service is
    // gone is the one being unloaded. Its queued messages are written before the database closes.
    for (const inst of [...live]) {
      if (inst.api.service('archive') === inst.service) continue;
      await inst.store.close();
      for (const u of inst.undo) u();
      live.delete(inst);
    }
  },
});

/**
 * Which messages go into a user archive (XEP-0313 §6.1.1: "all of the messages a user sends or
 * receives of type 'normal' or 'chat' that contain a <body> element"; groupchat belongs to the
 * room's archive). XEP-0334: <no-store/> and <no-permanent-store/> keep a message out, <store/>
 * lets in a message of any other type than error or groupchat, with or without a body.
 */
export function archivable(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'groupchat') return false;
  // One pass over the children (every message is asked twice, for sender and recipient).
  const inherited = stanza.attrs.xmlns;
  let store = false;
  let body = false;
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns ?? inherited;
    if (ns === NS_HINTS) {
      if (c.name === 'no-store' || c.name === 'no-permanent-store') return false;
      if (c.name === 'store') store = true;
    } else if (c.name === 'body' && (ns === undefined || ns === NS_CLIENT)) body = true;
  }
  return store || ((type === 'chat' || type === 'normal') && body);
}

/** How many of the latest outbound messages keep their archive id for carbons. */
const RECENT_IDS = 16;

/**
 * The archive ids of the latest messages archived for their senders. Carbons copies a message
 * in the same hook chain, normally right after the archive's hook: a short ring is enough, and
 * costs less than a WeakMap entry per message (0.4 µs, and work in every young-generation
 * collection). A copy made more than RECENT_IDS messages later goes without the id (a SHOULD).
 */
class RecentIds {
  private readonly stanzas: (Element | undefined)[] = new Array<Element | undefined>(RECENT_IDS).fill(undefined);
  private readonly ids: string[] = new Array<string>(RECENT_IDS).fill('');
  private last = 0;

  set(stanza: Element, id: string): void {
    this.last = (this.last + 1) % RECENT_IDS;
    this.stanzas[this.last] = stanza;
    this.ids[this.last] = id;
  }

  get(stanza: Element): string | undefined {
    for (let k = 0, i = this.last; k < RECENT_IDS; k++, i = (i + RECENT_IDS - 1) % RECENT_IDS) {
      if (this.stanzas[i] === stanza) return this.ids[i];
    }
    return undefined;
  }
}

class Archive {
  private readonly prefsCache = new Map<string, ArchivePrefs>();
  private resultCount = 0;

  constructor(private readonly api: ModuleApi<MamOptions>, private readonly store: MamStore, private readonly maxPageSize: number) {}

  append(owner: string, peer: Jid, stanza: Element, direction: 'in' | 'out', at?: number): string | Promise<string> {
    return this.store.append({
      owner,
      withBare: peer.bareString,
      withResource: peer.resource,
      direction,
      ts: at,
      xml: stanza, // the sender's and the recipient's copies of a local message: serialised once
    });
  }

  /**
   * XEP-0359 §3 (rule 3): an entity that adds stanza-ids overrides any that claim to be by it.
   * The server adds them for its accounts, so any "by" a local account or the server itself
   * that arrives on a message was forged, and is removed.
   */
  stripLocalStanzaIds(stanza: Element): void {
    let forged = false;
    for (const c of stanza.children) {
      if (typeof c !== 'string' && c.name === 'stanza-id' && c.attrs.xmlns === NS_SID && this.isLocal(c.attrs.by)) forged = true;
    }
    if (!forged) return;
    stanza.children = stanza.children.filter((c) =>
      typeof c === 'string' || !(c.name === 'stanza-id' && c.attrs.xmlns === NS_SID && this.isLocal(c.attrs.by)));
  }

  private isLocal(by: string | undefined): boolean {
    const jid = Jid.tryParse(by);
    return jid !== undefined && this.api.isLocalDomain(jid.domain);
  }

  // ---- preferences (XEP-0441) -----------------------------------------------------------

  async prefs(owner: string): Promise<ArchivePrefs> {
    const cached = this.prefsCache.get(owner);
    if (cached !== undefined) return cached;
    const prefs = (await this.store.prefs(owner)) ?? DEFAULT_PREFS;
    this.cachePrefs(owner, prefs);
    return prefs;
  }

  async setPrefs(owner: string, prefs: ArchivePrefs): Promise<void> {
    await this.store.setPrefs(owner, prefs);
    this.cachePrefs(owner, prefs);
  }

  private cachePrefs(owner: string, prefs: ArchivePrefs): void {
    this.prefsCache.delete(owner);
    this.prefsCache.set(owner, prefs);
    if (this.prefsCache.size > PREFS_CACHE) this.prefsCache.delete(this.prefsCache.keys().next().value!);
  }

  /**
   * XEP-0441 §2.3: whether messages with `other` (the 'to' of an outgoing message, the 'from'
   * of an incoming one) are archived. A listed bare JID matches all its resources, a listed full
   * JID only itself; 'never' wins over 'always'; default='roster' archives contacts in the roster.
   */
  allowed(owner: string, other: Jid): boolean | Promise<boolean> {
    const prefs = this.prefsCache.get(owner);
    if (prefs === undefined) return this.prefs(owner).then(() => this.allowed(owner, other));
    const bare = other.bareString;
    if (prefs.never.length > 0 || prefs.always.length > 0) {
      const full = other.toString();
      const listed = (list: readonly string[]) => list.some((j) => j === full || j === bare);
      if (listed(prefs.never)) return false;
      if (listed(prefs.always)) return true;
    }
    if (prefs.default !== 'roster') return prefs.default === 'always';
    const roster = this.api.service('roster');
    return roster !== undefined && roster.get(owner, bare).then((item) => item !== undefined);
  }

  // ---- queries ------------------------------------------------------------------------

  /** Sends results to `requester`: straight to a local session, else routed (in order, before the IQ result). */
  sendTo(requester: Jid, el: Element): void | Promise<void> {
    if (requester.resource !== '' && this.api.isLocalDomain(requester.domain)) {
      // A local session that is gone gets nothing: routing would hand the results to another resource.
      this.api.sessions.get(requester)?.send(el);
      return;
    }
    return this.api.route(el);
  }

  async query(owner: string, queryEl: Element, requester: Jid, send: (el: Element) => void | Promise<void>): Promise<Element> {
    const q = parseQuery(queryEl);
    const { filter, paging, limit } = await this.plan(owner, q);
    const backward = paging.before !== undefined || q.rsm.before !== undefined;
    // One more than the page: whether there is more in the paging direction.
    const rows = await this.store.page(filter, { ...paging, backward, limit: limit + 1, offset: q.rsm.index });
    const more = rows.length > limit;
    if (more) rows.length = limit;
    if (backward) rows.reverse(); // pages are always in archive order
    const count = await this.store.count(filter, COUNT_CAP);
    const firstRow = rows[0];
    let index: number | undefined;
    if (firstRow !== undefined) {
      if (q.rsm.index !== undefined) index = q.rsm.index;
      else if (paging.after === undefined && !backward) index = 0;
      else if (count !== undefined && backward && q.rsm.before === '') index = count - rows.length;
      else {
        const first = await this.store.locate(owner, firstRow.id);
        index = first === undefined ? undefined : await this.store.count(filter, COUNT_CAP, first);
      }
    }

    const from = owner;
    const to = requester.toString();
    const ordered = q.flip ? [...rows].reverse() : rows;
    for (const row of ordered) {
      let original: Element;
      try {
        original = parseXml(row.xml);
      } catch (err) {
        this.api.log.error({ err, owner, id: row.id }, 'skipping an unreadable archived message');
        continue;
      }
      original.attrs.xmlns = NS_CLIENT; // inside <forwarded/> it would otherwise inherit urn:xmpp:forward:0
      const sending = send(x('message', { from, to, id: `mam-${++this.resultCount}` },
        x('result', { xmlns: NS_MAM, queryid: q.queryId, id: row.id },
          x('forwarded', { xmlns: NS_FORWARD },
            x('delay', { xmlns: NS_DELAY, stamp: formatDateTime(row.ts) }),
            original))));
      if (sending) await sending;
    }

    const last = rows[rows.length - 1];
    return x('fin', { xmlns: NS_MAM, complete: more ? 'false' : 'true' },
      x('set', { xmlns: NS_RSM },
        firstRow !== undefined ? x('first', { index }, firstRow.id) : undefined,
        last !== undefined ? x('last', null, last.id) : undefined,
        count !== undefined ? x('count', null, String(count)) : undefined));
  }

  /** The query as store terms; unknown ids are item-not-found (XEP-0313 §4.1.3 and §4.3.2). */
  private async plan(owner: string, q: ParsedQuery): Promise<{ filter: ArchiveFilter; paging: { after?: Cursor; before?: Cursor }; limit: number }> {
    const locate = async (id: string, what: string): Promise<Cursor> => {
      const cursor = await this.store.locate(owner, id);
      if (cursor === undefined) throw new StanzaError('item-not-found', `No message ${id} (${what}) in this archive`);
      return cursor;
    };
    const filter: { -readonly [K in keyof ArchiveFilter]: ArchiveFilter[K] } = { owner };
    if (q.with !== undefined) {
      filter.withBare = q.with.bareString;
      if (q.with.resource !== '') filter.withResource = q.with.resource;
    }
    if (q.start !== undefined) filter.start = q.start;
    if (q.end !== undefined) filter.end = q.end;
    if (q.afterId !== undefined) filter.after = await locate(q.afterId, 'after-id');
    if (q.beforeId !== undefined) filter.before = await locate(q.beforeId, 'before-id');
    if (q.ids !== undefined) {
      const only: Cursor[] = [];
      for (const id of q.ids) only.push(await locate(id, 'ids'));
      filter.only = only;
    }
    if (q.text !== undefined) filter.text = q.text;
    const paging: { after?: Cursor; before?: Cursor } = {};
    if (q.rsm.after !== undefined) paging.after = await locate(q.rsm.after, 'after');
    if (q.rsm.before !== undefined && q.rsm.before !== '') paging.before = await locate(q.rsm.before, 'before');
    return { filter, paging, limit: Math.min(q.rsm.max ?? this.maxPageSize, this.maxPageSize) };
  }

  /** XEP-0313 §5: the first and last messages; an empty archive gives an empty element. */
  async metadata(owner: string): Promise<Element> {
    const bounds = await this.store.bounds(owner);
    if (bounds === undefined) return x('metadata', { xmlns: NS_MAM });
    return x('metadata', { xmlns: NS_MAM },
      x('start', { id: bounds.first.id, timestamp: formatDateTime(bounds.first.ts) }),
      x('end', { id: bounds.last.id, timestamp: formatDateTime(bounds.last.ts) }));
  }

  async removeOwner(owner: string): Promise<void> {
    await this.store.removeOwner(owner);
    this.prefsCache.delete(owner);
  }
}

// ---- preferences elements (XEP-0441 §2.1) -------------------------------------------------

function prefsElement(prefs: ArchivePrefs): Element {
  return x('prefs', { xmlns: NS_MAM, default: prefs.default },
    x('always', null, prefs.always.map((j) => x('jid', null, j))),
    x('never', null, prefs.never.map((j) => x('jid', null, j))));
}

function parsePrefs(el: Element): ArchivePrefs {
  const mode = el.attrs.default;
  if (mode !== 'always' && mode !== 'never' && mode !== 'roster') {
    throw new StanzaError('bad-request', "The default attribute must be 'always', 'never' or 'roster'");
  }
  const list = (name: string): string[] => {
    const holder = el.getChild(name, NS_MAM);
    if (holder === undefined) return []; // "If missing ... SHOULD be assumed ... to be an empty list"
    const out = new Set<string>();
    for (const item of holder.elements) {
      if (item.name !== 'jid' || (item.attrs.xmlns ?? NS_MAM) !== NS_MAM) throw new StanzaError('bad-request', `Unexpected <${item.name}/> in <${name}/>`);
      const jid = Jid.tryParse(item.text().trim());
      if (jid === undefined) throw new StanzaError('jid-malformed', `"${item.text()}" is not a valid JID`);
      out.add(jid.toString());
    }
    if (out.size > MAX_PREFS_JIDS) throw new StanzaError('policy-violation', `A preferences list holds at most ${MAX_PREFS_JIDS} JIDs`);
    return [...out];
  };
  return { default: mode, always: list('always'), never: list('never') };
}
