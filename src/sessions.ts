import type { Jid } from './jid';
import type { Session } from './session';

/**
 * Where bound sessions are found by JID. The single-process server keeps them in memory;
 * a cluster would implement the same interface over a shared registry (Redis, NATS), with
 * remote sessions whose `send` crosses to their node.
 */
export interface SessionRegistry {
  /** Adds a bound session. Returns the session it displaced with the same full JID, if any. */
  add(session: Session): Session | undefined;
  remove(session: Session): void;
  get(full: Jid): Session | undefined;
  /** All sessions of an account, in bind order. */
  ofAccount(bare: string): readonly Session[];
  all(): IterableIterator<Session>;
  readonly size: number;
}

export class LocalSessionRegistry implements SessionRegistry {
  private readonly byBare = new Map<string, Session[]>();
  private count = 0;

  add(session: Session): Session | undefined {
    const key = session.jid.bareString;
    const list = this.byBare.get(key);
    if (!list) {
      this.byBare.set(key, [session]);
      this.count++;
      return undefined;
    }
    const idx = list.findIndex((s) => s.jid.resource === session.jid.resource);
    if (idx !== -1) {
      const old = list[idx]!;
      list[idx] = session;
      return old;
    }
    list.push(session);
    this.count++;
    return undefined;
  }

  remove(session: Session): void {
    const key = session.jid.bareString;
    const list = this.byBare.get(key);
    if (!list) return;
    const idx = list.indexOf(session);
    if (idx === -1) return;
    list.splice(idx, 1);
    this.count--;
    if (list.length === 0) this.byBare.delete(key);
  }

  get(full: Jid): Session | undefined {
    const list = this.byBare.get(full.bareString);
    if (!list) return undefined;
    for (const s of list) if (s.jid.resource === full.resource) return s;
    return undefined;
  }

  ofAccount(bare: string): readonly Session[] {
    return this.byBare.get(bare) ?? EMPTY;
  }

  *all(): IterableIterator<Session> {
    for (const list of this.byBare.values()) yield* list;
  }

  get size(): number {
    return this.count;
  }
}

const EMPTY: readonly Session[] = Object.freeze([]);
