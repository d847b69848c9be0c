// XEP-0049: Private XML Storage (jabber:iq:private).
import { defineModule, StanzaError, x, type Element, type IqRequest } from '../../src';
import { parseXml } from '../../src/xml/parse';
import { PRIVATE_MIGRATIONS, SqlitePrivateStore } from './store';

export const NS_PRIVATE = 'jabber:iq:private';

export default defineModule({
  name: 'private',
  features: [NS_PRIVATE],
  migrations: PRIVATE_MIGRATIONS,
  setup(api) {
    const store = new SqlitePrivateStore(api.db);

    // Registered for any account so that a request for someone else's storage gets the
    // <forbidden/> the XEP prefers (a 'self' handler alone would leave service-unavailable).
    api.iq('get', NS_PRIVATE, 'query', async (req) => {
      const account = owner(req);
      const items = storedElements(req.payload);
      const namespace = items[0]!.attrs.xmlns!;
      // "A client MUST NOT query for more than one namespace in a single IQ get request."
      if (items.some((el) => el.attrs.xmlns !== namespace)) {
        throw new StanzaError('bad-request', 'Only one namespace may be retrieved per request');
      }
      const saved = await store.get(account, namespace);
      // Nothing stored: the requested element comes back as sent (XEP-0049 example 2).
      if (saved === undefined) return x('query', { xmlns: NS_PRIVATE }, items);
      return parseXml(`<query xmlns="${NS_PRIVATE}">${saved}</query>`);
    }, 'account');

    // A set stores each namespace's elements as given (even empty ones), replacing what that
    // namespace held; several namespaces in one set are stored together.
    api.iq('set', NS_PRIVATE, 'query', async (req) => {
      const account = owner(req);
      const byNamespace = new Map<string, string>();
      for (const el of storedElements(req.payload)) {
        const ns = el.attrs.xmlns!;
        byNamespace.set(ns, (byNamespace.get(ns) ?? '') + el.toString());
      }
      await store.put(account, byNamespace);
    }, 'account');

    api.hook('user/deleted', async ({ jid }) => {
      await store.removeAccount(jid.bareString);
    });
  },
});

/** "If a user attempts to get or set jabber:iq:private data that belongs to another user, the server MUST return a Forbidden ... error." */
function owner({ from, to }: IqRequest): string {
  if (to.bareString !== from.bareString) throw new StanzaError('forbidden', 'Private storage belongs to its account alone');
  return to.bareString;
}

/**
 * The query's child elements. "At least one child element with a proper namespace MUST be
 * included; otherwise the server MUST respond with a Not Acceptable error"; reserved namespaces
 * ('jabber:*', 'http://jabber.org/*', 'vcard-temp') are refused the same way, as the XEP allows.
 */
function storedElements(query: Element): Element[] {
  const items = query.elements;
  if (items.length === 0) throw new StanzaError('not-acceptable', 'The query needs a child element in its own namespace');
  for (const el of items) {
    const ns = el.attrs.xmlns;
    if (ns === undefined || ns === '' || ns === NS_PRIVATE) {
      throw new StanzaError('not-acceptable', `<${el.name}/> needs a namespace of its own`);
    }
    if (isReserved(ns)) throw new StanzaError('not-acceptable', `The namespace ${ns} is reserved`);
  }
  return items;
}

function isReserved(ns: string): boolean {
  return ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}
