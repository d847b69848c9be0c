import type { Element } from './xml/element';
import type { Jid } from './jid';
import type { Session } from './session';
import { StanzaError, type StreamError } from './errors';

/**
 * Typed events: each hook name maps to its payload. Modules that own an event add it by
 * declaration merging (`declare module '../../src/hooks' { interface HookMap { ... } }`).
 */
export interface HookMap {
  /** A bound client sent a stanza ('from' already stamped). Claim to stop it (policy: rate limits, blocking). */
  'stanza/outbound': { session: Session; stanza: Element; to: Jid | undefined };
  /** Presence from a local client (broadcast when no 'to', or directed/subscription). The presence module claims it. */
  'presence/outbound': { session: Session; stanza: Element; to: Jid | undefined };
  /**
   * Any stanza about to reach a local account (bare or full JID), before the kind-specific
   * hooks below. Claim to drop it silently, throw StanzaError to bounce it (XEP-0191 blocking).
   */
  'stanza/inbound': { stanza: Element; to: Jid; from: Jid };
  /** Presence addressed to a local account or one of its resources. Claim when handled. */
  'presence/inbound': { stanza: Element; to: Jid; from: Jid };
  /** A message addressed to a local account (bare or full), before delivery. Claim to drop or divert it. */
  'message/inbound': { stanza: Element; to: Jid; from: Jid };
  /**
   * A message to a local account was handed to these sessions (one for a full JID, the
   * highest-priority ones for a bare JID). Fired only when someone listens; for carbons.
   */
  'message/delivered': { stanza: Element; to: Jid; from: Jid; sessions: readonly Session[] };
  /** A message for a local account that no session could take. Claim when stored. */
  'message/offline': { stanza: Element; to: Jid; from: Jid };
  /** A message or presence addressed to the server itself (no localpart). */
  'stanza/host': { stanza: Element; to: Jid; from: Jid };
  /** Resource bound: the session can now send and receive stanzas. */
  'session/bound': { session: Session };
  /** First available presence of a session (RFC 6121 §4.2): offline messages flow now. */
  'presence/initial': { session: Session };
  /** Session gone (stream closed, error, kicked, replaced). */
  'session/closed': { session: Session; error?: StreamError };
  'user/created': { jid: Jid };
  /** Account removed: modules delete what they store for it. */
  'user/deleted': { jid: Jid };
}

export type HookName = keyof HookMap;
/** Return true (or a promise of true) to claim the event: later handlers are skipped. */
export type HookHandler<K extends HookName> = (payload: HookMap[K]) => boolean | void | Promise<boolean | void>;

/** Named priority bands: higher runs first, ties in registration order. */
export const Priority = {
  Policy: 100,
  Normal: 0,
  Fallback: -100,
} as const;

interface Entry {
  handler: HookHandler<HookName>;
  priority: number;
  owner: string;
}

export class HookBus {
  private readonly hooks = new Map<HookName, Entry[]>();

  on<K extends HookName>(name: K, handler: HookHandler<K>, priority: number = Priority.Normal, owner = 'core'): () => void {
    // Lists are replaced, never changed in place, so that fire() can walk one without a copy
    // while handlers register or unregister.
    const list = [...(this.hooks.get(name) ?? [])];
    const entry: Entry = { handler: handler as HookHandler<HookName>, priority, owner };
    // Insert after every entry of equal or higher priority: stable ordering for ties.
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority < priority) i--;
    list.splice(i, 0, entry);
    this.hooks.set(name, list);
    return () => {
      const cur = this.hooks.get(name);
      if (cur?.includes(entry)) this.hooks.set(name, cur.filter((e) => e !== entry));
    };
  }

  has(name: HookName): boolean {
    return (this.hooks.get(name)?.length ?? 0) > 0;
  }

  /**
   * Runs handlers in priority order until one claims the event. A handler that throws a
   * StanzaError rejects the stanza; any other throw is reported through `onError` and
   * skipped: one module's bug does not stop the others.
   */
  async fire<K extends HookName>(name: K, payload: HookMap[K], onError?: (err: unknown, owner: string) => void): Promise<boolean> {
    const list = this.hooks.get(name);
    if (!list || list.length === 0) return false;
    for (const entry of list) {
      try {
        let r = entry.handler(payload);
        if (r instanceof Promise) r = await r;
        if (r === true) return true;
      } catch (err) {
        // A StanzaError is an answer, not a bug: the router sends it back to the sender.
        if (err instanceof StanzaError) throw err;
        if (onError) onError(err, entry.owner);
        else throw err;
      }
    }
    return false;
  }
}
