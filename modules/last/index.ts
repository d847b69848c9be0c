// XEP-0012: Last Activity. Server uptime, and when an account last went offline.
import { defineModule, isAvailable, Priority, StanzaError, x, type Session } from '../../src';
import { LAST_MIGRATIONS, SqliteLastStore } from './store';

export const NS_LAST = 'jabber:iq:last';

/** The part of the roster service this module needs (the roster module provides it). */
interface RosterLike {
  subscription(user: string, contact: string): Promise<'none' | 'to' | 'from' | 'both'>;
}

/** Per-session note (session.data) of the status text of the session's last unavailable presence. */
const STATUS_KEY = 'last';

export default defineModule({
  name: 'last',
  features: [NS_LAST],
  migrations: LAST_MIGRATIONS,
  setup(api) {
    const store = new SqliteLastStore(api.db);
    /**
     * Accounts deleted since load. Deleting an account closes its sessions, and their
     * session/closed may come after user/deleted: no row is written for them again (and a
     * stale one is cleared when the name is registered anew).
     */
    const deleted = new Set<string>();

    /** True when a session of the account other than `session` has sent available presence. */
    const otherAvailable = (session: Session) =>
      api.sessions.ofAccount(session.jid.bareString).some((s) => s !== session && isAvailable(s));

    // §5: to the server, the uptime in seconds and no character data.
    api.iq('get', NS_LAST, 'query', () =>
      x('query', { xmlns: NS_LAST, seconds: Math.floor(process.uptime()) }), 'host');

    // §3 (offline user query): answered by the server on the account's behalf.
    api.iq('get', NS_LAST, 'query', async ({ from, to }) => {
      const user = to.bareString;
      if (from.bareString !== user) {
        // Only for those allowed to see the account's presence; everyone else gets forbidden (§3, §8).
        const roster = api.service('roster' as never) as unknown as RosterLike | undefined;
        const sub = typeof roster?.subscription === 'function' ? await roster.subscription(user, from.bareString) : 'none';
        if (sub !== 'from' && sub !== 'both') throw new StanzaError('forbidden', 'Not subscribed to this account\'s presence');
      }
      // An available resource means the account is online now: seconds='0' and no text.
      if (api.sessions.ofAccount(user).some(isAvailable)) return x('query', { xmlns: NS_LAST, seconds: 0 });
      const last = await store.get(user);
      if (!last) throw new StanzaError('item-not-found', 'No last activity is recorded for this account');
      const seconds = Math.max(0, Math.floor((Date.now() - last.at) / 1000));
      return x('query', { xmlns: NS_LAST, seconds }, last.status !== '' ? last.status : undefined);
    }, 'account');

    // A broadcast unavailable presence: note its status; when no other resource stays
    // available, the account went offline now. Fallback band: only presence that no policy
    // (rate limit, blocking) stopped, and before the presence module clears session.presence.
    // Not async: every outbound stanza passes here, and most return at the first line.
    api.hook('stanza/outbound', ({ session, stanza, to }) => {
      if (stanza.name !== 'presence' || to !== undefined) return;
      if (stanza.attrs.type === undefined) session.data.delete(STATUS_KEY); // available again: that goodbye is void
      if (stanza.attrs.type !== 'unavailable') return;
      const status = stanza.getChildText('status') ?? '';
      session.data.set(STATUS_KEY, status);
      if (!otherAvailable(session)) return store.set(session.jid.bareString, { at: Date.now(), status }).then(() => undefined);
    }, Priority.Fallback);

    // Session ended: the logout time when no resource of the account remains available.
    api.hook('session/closed', async ({ session }) => {
      const user = session.jid.bareString;
      if (deleted.has(user) || otherAvailable(session)) return;
      const status = session.data.get(STATUS_KEY);
      await store.set(user, { at: Date.now(), status: typeof status === 'string' ? status : '' });
    });

    api.hook('user/deleted', async ({ jid }) => {
      deleted.add(jid.bareString);
      await store.remove(jid.bareString);
    });
    api.hook('user/created', async ({ jid }) => {
      deleted.delete(jid.bareString);
      await store.remove(jid.bareString);
    });
  },
});
