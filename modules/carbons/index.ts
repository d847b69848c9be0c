// XEP-0280: Message Carbons (urn:xmpp:carbons:2), copies wrapped per XEP-0297, with XEP-0334 <no-copy/>.
import { defineModule, Priority, StanzaError, x, type Element, type Jid, type Session } from '../../src';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_HINTS = 'urn:xmpp:hints';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_CLIENT = 'jabber:client';

/**
 * Payloads of bodiless messages that are still part of a conversation (XEP-0280 §6 suggests
 * chat states, receipts and markers): a 'normal' message with one of them is copied too.
 */
const IM_PAYLOADS: ReadonlySet<string> = new Set([
  'http://jabber.org/protocol/chatstates', // XEP-0085
  'urn:xmpp:receipts', // XEP-0184
  'urn:xmpp:chat-markers:0', // XEP-0333
  'urn:xmpp:jingle-message:0', // XEP-0353 call setup
  'urn:xmpp:message-correct:0', // XEP-0308
  'urn:xmpp:reactions:0', // XEP-0444
  'urn:xmpp:message-retract:1', // XEP-0424
]);

declare module '../../src/hooks' {
  interface HookMap {
    /**
     * Carbon copies of `original` are about to go to `account`'s other resources. Handlers may
     * add to `copy`, the message placed inside <forwarded/> (the archive adds the sender's
     * XEP-0359 stanza-id to sent copies, as XEP-0313 §3.5 asks).
     */
    'carbons/copy': { account: Jid; direction: 'sent' | 'received'; original: Element; copy: Element };
  }
}

const NAME = 'carbons';

/** True when the session has enabled carbons (XEP-0280 §4). */
export function carbonsEnabled(session: Session): boolean {
  return session.data.get(NAME) === true;
}

export default defineModule({
  name: NAME,
  // XEP-0280 §3: the server advertises the feature.
  features: [NS_CARBONS],
  setup(api) {
    /** Messages that carried <private/> (stripped before delivery, XEP-0280 §9): no received copies. */
    const privateMessages = new WeakSet<Element>();

    // §4 and §5: enabled per session; enabling or disabling twice is no error (§10.1).
    api.iq('set', NS_CARBONS, 'enable', ({ session }) => {
      if (session === undefined) throw new StanzaError('not-allowed', 'Only a client session can enable carbons');
      session.data.set(NAME, true);
    }, 'self');
    api.iq('set', NS_CARBONS, 'disable', ({ session }) => {
      if (session === undefined) throw new StanzaError('not-allowed', 'Only a client session can disable carbons');
      session.data.delete(NAME);
    }, 'self');
    // §5: "<not-allowed/> if trying to disable another client's Carbons" (and enable likewise).
    const notAllowed = (): never => {
      throw new StanzaError('not-allowed', "Carbons are enabled on one's own account");
    };
    api.iq('set', NS_CARBONS, 'enable', notAllowed, 'account');
    api.iq('set', NS_CARBONS, 'disable', notAllowed, 'account');

    /** Wraps and sends the copies; `copy` is what goes inside <forwarded/>. */
    async function sendCopies(account: Jid, direction: 'sent' | 'received', original: Element, targets: readonly Session[]): Promise<void> {
      const copy = original.clone();
      copy.attrs.xmlns = NS_CLIENT; // inside <forwarded/> it would otherwise inherit urn:xmpp:forward:0
      await api.fire('carbons/copy', { account, direction, original, copy });
      const from = account.bareString;
      for (const s of targets) {
        if (s.closed) continue;
        // §7 and §8: from the bare JID, to the resource's full JID, same type as the original.
        // Sent straight to the session: routing would run message hooks on the copy.
        s.send(x('message', { from, to: s.jid.toString(), type: original.attrs.type },
          x(direction, { xmlns: NS_CARBONS }, x('forwarded', { xmlns: NS_FORWARD }, copy))));
      }
    }

    // §8: a message a client sends goes, as <sent/>, to the account's other enabled resources.
    // Fallback band: after policy (a blocked message is not copied) and after the archive,
    // which strips forged stanza-ids and notes the archive id the copy carries.
    api.hook('stanza/outbound', ({ session, stanza, to }) => {
      if (stanza.name !== 'message') return;
      const account = session.jid.bare();
      // To the account itself: the other resources get it, or a <received/> copy, on delivery.
      if (to === undefined || to.bareString === account.bareString) return;
      const targets = api.sessions.ofAccount(account.bareString).filter((s) => s !== session && carbonsEnabled(s));
      if (targets.length === 0 || !eligible(stanza, 'sent', to)) return;
      return sendCopies(account, 'sent', stanza, targets).then(() => undefined);
    }, Priority.Fallback);

    // §9: "the receiving server SHOULD remove the <private/> element before delivering to the
    // recipient" (and MUST NOT copy the message).
    api.hook('message/inbound', ({ stanza }) => {
      if (stanza.getChild('private', NS_CARBONS) === undefined) return;
      stanza.children = stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'private' && c.attrs.xmlns === NS_CARBONS));
      privateMessages.add(stanza);
    });

    // §7: a delivered message goes, as <received/>, to the enabled resources that did not get it
    // (a message to the bare JID that several resources received is not copied to them).
    api.hook('message/delivered', ({ stanza, to, from, sessions }) => {
      if (privateMessages.has(stanza)) return;
      const account = to.bare();
      const sender = from.toString();
      const targets = api.sessions.ofAccount(account.bareString)
        .filter((s) => carbonsEnabled(s) && !sessions.includes(s) && s.jid.toString() !== sender);
      if (targets.length === 0 || !eligible(stanza, 'received', to)) return;
      return sendCopies(account, 'received', stanza, targets).then(() => undefined);
    });
  },
});

/**
 * XEP-0280 §6, the suggested rules: chat messages, normal messages with a body (or with a
 * conversation payload such as a chat state or receipt); never groupchat, headline or error;
 * never with <private/> or XEP-0334 <no-copy/>. MUC private messages (they carry a muc#user
 * <x/>) are copied when sent, but not when received on a full JID: that resource joined the
 * room and the others did not, so a copy would show them a conversation from a room they are
 * not in. A message to the bare JID with a muc#user <x/> (a mediated invitation) is copied.
 */
export function eligible(stanza: Element, direction: 'sent' | 'received', to: Jid): boolean {
  if (stanza.getChild('private', NS_CARBONS) !== undefined || stanza.getChild('no-copy', NS_HINTS) !== undefined) return false;
  if (direction === 'received' && to.resource !== '' && stanza.getChild('x', NS_MUC_USER) !== undefined) return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'chat') return true;
  if (type !== 'normal') return false;
  for (const child of stanza.elements) {
    const ns = child.attrs.xmlns ?? stanza.attrs.xmlns;
    if (child.name === 'body' && (ns === undefined || ns === NS_CLIENT)) return true;
    if (ns !== undefined && IM_PAYLOADS.has(ns)) return true;
  }
  return false;
}
