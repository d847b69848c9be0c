import { randomBytes } from 'node:crypto';
import type { Element } from '../xml/element';

/** XEP-0198: Stream Management. */
export const NS_SM = 'urn:xmpp:sm:3';

/** Counters are modulo 2^32 (XEP-0198 §4). */
const MOD = 2 ** 32;

/**
 * The per-session state of XEP-0198: how many stanzas we handled from the client (h), and
 * the stanzas we sent that the client has not acknowledged yet, oldest first.
 */
export class StreamManagement {
  /** Unguessable id for resumption (XEP-0198 §5). */
  readonly id = randomBytes(18).toString('base64url');
  /** Stanzas from the client that the server has handled. */
  inbound = 0;
  /** Stanzas sent to the client, acknowledged or not. */
  private sentCount = 0;
  private unacked: Element[] = [];
  /** An <r/> is out and not yet answered. */
  ackRequested = false;

  constructor(readonly resumable: boolean, readonly resumeTimeoutMs: number) {}

  handled(): void {
    this.inbound = (this.inbound + 1) % MOD;
  }

  sent(stanza: Element): void {
    this.sentCount = (this.sentCount + 1) % MOD;
    this.unacked.push(stanza);
  }

  get unackedCount(): number {
    return this.unacked.length;
  }

  get sendCount(): number {
    return this.sentCount;
  }

  /**
   * The client has handled `h` stanzas. Returns false when h acknowledges more than was
   * sent (the client is broken: XEP-0198 §4's handled-count-too-high).
   */
  ack(h: number): boolean {
    const acked = (h - (this.sentCount - this.unacked.length) + MOD) % MOD;
    if (acked > this.unacked.length) return false;
    if (acked > 0) this.unacked.splice(0, acked);
    this.ackRequested = false;
    return true;
  }

  /** Everything not acknowledged; the queue is emptied. */
  takeUnacked(): Element[] {
    const out = this.unacked;
    this.unacked = [];
    return out;
  }
}

/** Parses an 'h' attribute: an unsigned 32-bit integer, or undefined when malformed. */
export function parseH(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < MOD ? n : undefined;
}
