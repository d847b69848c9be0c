// XEP-0054: vcard-temp. Each account stores one vCard; anyone may read it, only the owner may change it.
import { defineModule, StanzaError, x, type Element, type IqRequest } from '../../src';
import { parseXml } from '../../src/xml/parse';
import { SqliteVcardStore, VCARD_MIGRATIONS } from './store';

export const NS_VCARD = 'vcard-temp';

export interface VcardOptions {
  /** Largest serialised vCard accepted, in bytes (avatars are embedded, so this is not tiny). */
  maxBytes: number;
}

export default defineModule<VcardOptions>({
  name: 'vcard',
  features: [NS_VCARD],
  migrations: VCARD_MIGRATIONS,
  defaults: { maxBytes: 128 * 1024 },
  setup(api) {
    const store = new SqliteVcardStore(api.db);

    // §3.1: one's own vCard. With none stored we answer with an empty <vCard/> (the XEP allows
    // this or item-not-found; clients handle the empty result better).
    api.iq('get', NS_VCARD, 'vCard', async ({ to }) => {
      const saved = await store.get(to.bareString);
      return saved === undefined ? x('vCard', { xmlns: NS_VCARD }) : parseXml(saved);
    }, 'self');

    // §3.3: another account's vCard. With none stored the XEP requires an error; we use
    // service-unavailable, the error the router gives for an account that does not exist,
    // so the answer does not tell whether the account exists.
    api.iq('get', NS_VCARD, 'vCard', async ({ to }) => {
      const saved = await store.get(to.bareString);
      if (saved === undefined) throw new StanzaError('service-unavailable');
      return parseXml(saved);
    }, 'account');

    // §3.2: set replaces the whole vCard. An empty <vCard/> removes it.
    api.iq('set', NS_VCARD, 'vCard', async ({ to, payload }: IqRequest) => {
      const xml = payload.toString();
      const size = Buffer.byteLength(xml, 'utf8');
      if (size > api.options.maxBytes) {
        throw new StanzaError('not-acceptable', `The vCard is ${size} bytes; the limit is ${api.options.maxBytes} bytes`);
      }
      if (isEmpty(payload)) await store.remove(to.bareString);
      else await store.put(to.bareString, xml);
    }, 'self');

    // §3.2: "If a user attempts to perform an IQ set on another user's vCard ... the server
    // MUST return a stanza error, which SHOULD be <forbidden/> or <not-allowed/>."
    api.iq('set', NS_VCARD, 'vCard', () => {
      throw new StanzaError('forbidden', "Only the account's owner may change its vCard");
    }, 'account');

    api.hook('user/deleted', async ({ jid }) => {
      await store.remove(jid.bareString);
    });
  },
});

/** No attributes beyond xmlns and no content: the same as having no vCard. */
function isEmpty(vcard: Element): boolean {
  if (Object.keys(vcard.attrs).some((k) => k !== 'xmlns')) return false;
  return vcard.children.every((c) => typeof c === 'string' && c.trim() === '');
}
