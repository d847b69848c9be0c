// XEP-0160: Best Practices for Handling Offline Messages (with XEP-0203 delay and XEP-0334 hints).
import { defineModule, Priority, StanzaError, x, type Element, type Session } from '../../src';
import { parseXml } from '../../src/xml/parse';
import { OFFLINE_MIGRATIONS, SqliteOfflineStore } from './store';

export const NS_OFFLINE = 'msgoffline';
export const NS_DELAY = 'urn:xmpp:delay';
export const NS_HINTS = 'urn:xmpp:hints';
export const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';

export interface OfflineOptions {
  /** Per-account limit; a message beyond it is bounced. */
  maxMessages: number;
}

/**
 * Children that carry nothing worth keeping on their own: a bodyless message made only of
 * these is not stored (XEP-0160 §3: chat-state-only messages SHOULD NOT be stored offline;
 * XEP-0022 event notifications likewise; hints, ids, thread and delay are metadata).
 */
const TRANSIENT_NS = new Set([NS_CHATSTATES, 'jabber:x:event', NS_HINTS, 'urn:xmpp:sid:0', NS_DELAY]);

export default defineModule<OfflineOptions>({
  name: 'offline',
  features: [NS_OFFLINE],
  defaults: { maxMessages: 1000 },
  migrations: OFFLINE_MIGRATIONS,
  setup(api) {
    const max = api.options.maxMessages;
    if (!Number.isInteger(max) || max < 0) throw new Error(`maxMessages must be a non-negative integer, not ${String(max)}`);
    const store = new SqliteOfflineStore(api.db);
    /** Per account, the delivery under way: a second initial presence waits for it (no double delivery). */
    const flushing = new Map<string, Promise<void>>();

    api.hook('message/offline', async ({ stanza, to }) => {
      if (!shouldStore(stanza)) return false; // not claimed: the router answers service-unavailable
      const user = to.bareString;
      // XEP-0160 §2 step 3: a full queue is answered with service-unavailable.
      if ((await store.count(user)) >= max) {
        throw new StanzaError('service-unavailable', 'Offline message storage for the recipient is full');
      }
      const now = Date.now();
      const stored = stanza.clone().append(
        x('delay', { xmlns: NS_DELAY, from: to.domain, stamp: new Date(now).toISOString() }, 'Offline Storage'),
      );
      // Committed (synchronous=FULL) before the hook returns and the sender's next stanza is handled.
      await store.store(user, stored.toString(), now);
      return true;
    }, Priority.Fallback);

    // XEP-0160 §2 step 5: delivered when the account next sends non-negative available presence.
    api.hook('presence/initial', async ({ session }) => {
      if (session.priority < 0) return;
      const user = session.jid.bareString;
      const previous = flushing.get(user) ?? Promise.resolve();
      const run = previous.then(() => deliver(session), () => deliver(session));
      flushing.set(user, run);
      try {
        await run;
      } finally {
        if (flushing.get(user) === run) flushing.delete(user);
      }
    });

    api.hook('user/deleted', async ({ jid }) => {
      await store.deleteAll(jid.bareString);
    });

    /** Sends the stored messages in order, then deletes exactly those that were sent. */
    async function deliver(session: Session): Promise<void> {
      const user = session.jid.bareString;
      const rows = await store.fetch(user);
      const done: number[] = [];
      for (const row of rows) {
        if (session.closed) break; // the rest stays stored for the next session
        let message: Element;
        try {
          message = parseXml(row.xml);
        } catch (err) {
          api.log.error({ err, id: row.id, jid: user }, 'dropping an unreadable offline message');
          done.push(row.id);
          continue;
        }
        session.send(message);
        done.push(row.id);
      }
      await store.delete(user, done);
    }
  },
});

/** XEP-0334 hints first, then XEP-0160 §3 by type, then whether there is anything to keep. */
export function shouldStore(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return false;
  if (stanza.getChild('no-store', NS_HINTS)) return false;
  // <no-permanent-store/> allows temporary storage for an offline recipient (XEP-0334 §2.3), so it does not stop us.
  // <store/> on any type but error SHOULD be stored (XEP-0334 §4.4); note that the router never
  // offers headline or groupchat messages to message/offline, so in practice this covers normal and chat.
  if (stanza.getChild('store', NS_HINTS)) return true;
  if (type !== 'normal' && type !== 'chat') return false; // groupchat, headline
  if (stanza.getChild('body')) return true;
  return stanza.elements.some((child) => !isTransient(child, stanza));
}

function isTransient(child: Element, message: Element): boolean {
  const ns = child.attrs.xmlns ?? message.attrs.xmlns;
  if (ns === undefined || ns === 'jabber:client') return child.name === 'thread';
  return TRANSIENT_NS.has(ns);
}
