/**
 * The messages a prefilled archive holds (archive --prefill), the same for every server that
 * takes one: rows/2 messages between the pairs (u0,u1), (u2,u3), ... in turn, alternating
 * direction per round, one millisecond apart and ending now; each is archived twice (the
 * sender's copy and the receiver's), so u0↔u1 is 1 % of the rows with 100 pairs.
 */
import { userName } from './types';

export interface FillMessage {
  /** Sender and receiver, bare JIDs. */
  readonly from: string;
  readonly to: string;
  readonly id: string;
  readonly body: string;
  /** Milliseconds since the epoch. */
  readonly ts: number;
}

export function* fillMessages(rows: number, users: number, domain: string): Generator<FillMessage> {
  const pairs = Math.floor(users / 2);
  const messages = Math.floor(rows / 2);
  const start = Date.now() - messages;
  for (let m = 0; m < messages; m++) {
    const p = m % pairs;
    const dir = Math.floor(m / pairs) & 1;
    yield {
      from: `${userName(2 * p + dir)}@${domain}`,
      to: `${userName(2 * p + (dir ^ 1))}@${domain}`,
      id: `f${m}`,
      body: `fill message ${m} lorem ipsum dolor sit amet consectetur adipiscing elit`,
      ts: start + m,
    };
  }
}

/** Hands the fill messages to `write` 10 000 at a time (one transaction each, for the callers). */
export function fillInBatches(rows: number, users: number, domain: string, write: (batch: FillMessage[]) => void): void {
  let pending: FillMessage[] = [];
  for (const m of fillMessages(rows, users, domain)) {
    pending.push(m);
    if (pending.length === 10_000) {
      write(pending);
      pending = [];
    }
  }
  if (pending.length > 0) write(pending);
}
