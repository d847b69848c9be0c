// XEP-0030: Service Discovery. disco#info and disco#items for the server and for accounts.
import { defineModule, StanzaError, x, type Element, type IqRequest, type ModuleApi } from '../../src';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/**
 * What other modules add to service discovery. Each call returns its own removal: call it
 * in the module's teardown (the disco module cannot tell whose entries they are).
 */
export interface DiscoService {
  /** Lists an entity (e.g. a MUC service 'conference.example.org') in the server's disco#items. */
  addItem(jid: string, name?: string): () => void;
  /** Adds a feature to every account's disco#info (e.g. 'urn:xmpp:mam:2' for XEP-0313). */
  addAccountFeature(feature: string): () => void;
  /** Adds an identity to every account's disco#info (e.g. pubsub/pep for XEP-0163). */
  addAccountIdentity(identity: DiscoIdentity): () => void;
}

declare module '../../src/module' {
  interface ServiceMap {
    disco: DiscoService;
  }
}

/** The part of the roster service this module needs (the roster module provides it). */
interface RosterLike {
  subscription(user: string, contact: string): Promise<'none' | 'to' | 'from' | 'both'>;
}

const SERVER_IDENTITY: DiscoIdentity = { category: 'server', type: 'im', name: 'xmppd' };
const ACCOUNT_IDENTITY: DiscoIdentity = { category: 'account', type: 'registered' };

export default defineModule({
  name: 'disco',
  features: [NS_DISCO_INFO, NS_DISCO_ITEMS],
  setup(api) {
    const items = new Map<string, { jid: string; name?: string }>();
    const accountFeatures = new Counter<string>();
    const accountIdentities = new Counter<string>();

    api.provide('disco', {
      addItem(jid, name) {
        const item = name === undefined ? { jid } : { jid, name };
        items.set(jid, item);
        return () => {
          if (items.get(jid) === item) items.delete(jid);
        };
      },
      addAccountFeature(feature) {
        return accountFeatures.add(feature);
      },
      addAccountIdentity(identity) {
        return accountIdentities.add(JSON.stringify([identity.category, identity.type, identity.name ?? null]));
      },
    });

    // ---- the server ---------------------------------------------------------

    api.iq('get', NS_DISCO_INFO, 'query', (req) => {
      noNode(req.payload);
      const features = new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...api.features()]);
      return infoResult([SERVER_IDENTITY], features);
    }, 'host');

    api.iq('get', NS_DISCO_ITEMS, 'query', (req) => {
      noNode(req.payload);
      const domain = req.to.domain;
      const list = [...items.values()].filter((item) => showsOn(item.jid, domain, api.domains));
      list.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
      return x('query', { xmlns: NS_DISCO_ITEMS }, list.map((item) => x('item', { jid: item.jid, name: item.name })));
    }, 'host');

    // ---- accounts (the server answers on the account's behalf) ------------

    api.iq('get', NS_DISCO_INFO, 'query', async (req) => {
      // XEP-0030 §8: service-unavailable unless the requester may see the account's presence.
      if (!(await mayDiscover(api, req))) throw new StanzaError('service-unavailable');
      noNode(req.payload);
      const identities = [ACCOUNT_IDENTITY, ...accountIdentities.keys().map(parseIdentity)];
      const features = new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...accountFeatures.keys()]);
      return infoResult(identities, features);
    }, 'account');

    api.iq('get', NS_DISCO_ITEMS, 'query', (req) => {
      // XEP-0030 §8: an empty result whoever asks; the server lists no resources or nodes yet.
      noNode(req.payload);
      return x('query', { xmlns: NS_DISCO_ITEMS });
    }, 'account');
  },
});

/** No node is known here: XEP-0030 §3.1 and §4.1 answer a query for an unknown node with item-not-found. */
function noNode(payload: Element): void {
  if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
}

function infoResult(identities: readonly DiscoIdentity[], features: ReadonlySet<string>): Element {
  return x('query', { xmlns: NS_DISCO_INFO },
    identities.map((i) => x('identity', { category: i.category, type: i.type, name: i.name })),
    [...features].sort().map((f) => x('feature', { var: f })),
  );
}

/** The account itself, or a contact with a 'from' or 'both' subscription from the account's point of view. */
async function mayDiscover(api: ModuleApi, { from, to }: IqRequest): Promise<boolean> {
  if (from.bareString === to.bareString) return true;
  const roster = api.service('roster' as never) as unknown as RosterLike | undefined;
  if (typeof roster?.subscription !== 'function') return false;
  const sub = await roster.subscription(to.bareString, from.bareString);
  return sub === 'from' || sub === 'both';
}

/**
 * Items belong to the hosted domain they are a subdomain of (conference.a.test under a.test);
 * an item under none of the hosted domains is listed on all of them.
 */
function showsOn(jid: string, domain: string, domains: readonly string[]): boolean {
  const host = jid.slice(jid.indexOf('@') + 1).split('/')[0]!;
  const under = (d: string) => host === d || host.endsWith('.' + d);
  if (under(domain)) return true;
  return !domains.some(under);
}

function parseIdentity(key: string): DiscoIdentity {
  const [category, type, name] = JSON.parse(key) as [string, string, string | null];
  return name === null ? { category, type } : { category, type, name };
}

/** A multiset: an entry stays while any of the modules that added it keeps it. */
class Counter<T> {
  private readonly counts = new Map<T, number>();

  add(key: T): () => void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.counts.get(key) ?? 1) - 1;
      if (n <= 0) this.counts.delete(key);
      else this.counts.set(key, n);
    };
  }

  keys(): T[] {
    return [...this.counts.keys()];
  }
}
