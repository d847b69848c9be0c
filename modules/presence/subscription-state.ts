/**
 * RFC 6121 Appendix A: the presence subscription state machine, as data. Each table below is
 * one table of the appendix, row for row: the state the user's roster holds for a contact,
 * whether the server routes (outbound) or delivers (inbound) the stanza, and the new state
 * (`null` where the RFC says "no state change"). Pre-approval (§3.4) is layered on top in
 * `outbound`/`inbound`, because the appendix tables do not carry the 'approved' flag.
 *
 * Pure functions only: the presence module reads the roster item, asks here what to do,
 * then stores the result.
 */

/** RFC 6121 §A.1: the nine defined states, spelled as the RFC spells them. */
export const SUBSCRIPTION_STATES = [
  'None',
  'None + Pending Out',
  'None + Pending In',
  'None + Pending Out+In',
  'To',
  'To + Pending In',
  'From',
  'From + Pending Out',
  'Both',
] as const;

export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];
export type SubscriptionStanza = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
export type RosterSubscription = 'none' | 'to' | 'from' | 'both';

/** One row of an Appendix A table: forward = "ROUTE?" (outbound) or "DELIVER?" (inbound). */
export interface TableRow {
  readonly forward: boolean;
  /** null: "no state change". */
  readonly next: SubscriptionState | null;
}

type Table = Readonly<Record<SubscriptionState, TableRow>>;

const row = (forward: boolean, next: SubscriptionState | null): TableRow => ({ forward, next });

/** §A.2: server processing of outbound presence subscription stanzas (ROUTE?). */
export const OUTBOUND_TABLES: Readonly<Record<SubscriptionStanza, Table>> = {
  // §A.2.1
  subscribe: {
    'None': row(true, 'None + Pending Out'),
    'None + Pending Out': row(true, null),
    'None + Pending In': row(true, 'None + Pending Out+In'),
    'None + Pending Out+In': row(true, null),
    'To': row(true, null),
    'To + Pending In': row(true, null),
    'From': row(true, 'From + Pending Out'),
    'From + Pending Out': row(true, null),
    'Both': row(true, null),
  },
  // §A.2.2
  subscribed: {
    'None': row(false, null),
    'None + Pending Out': row(false, null),
    'None + Pending In': row(true, 'From'),
    'None + Pending Out+In': row(true, 'From + Pending Out'),
    'To': row(false, null),
    'To + Pending In': row(true, 'Both'),
    'From': row(false, null),
    'From + Pending Out': row(false, null),
    'Both': row(false, null),
  },
  // §A.2.3
  unsubscribe: {
    'None': row(true, null),
    'None + Pending Out': row(true, 'None'),
    'None + Pending In': row(true, null),
    'None + Pending Out+In': row(true, 'None + Pending In'),
    'To': row(true, 'None'),
    'To + Pending In': row(true, 'None + Pending In'),
    'From': row(true, null),
    'From + Pending Out': row(true, 'From'),
    'Both': row(true, 'From'),
  },
  // §A.2.4
  unsubscribed: {
    'None': row(false, null),
    'None + Pending Out': row(false, null),
    'None + Pending In': row(true, 'None'),
    'None + Pending Out+In': row(true, 'None + Pending Out'),
    'To': row(false, null),
    'To + Pending In': row(true, 'To'),
    'From': row(true, 'None'),
    'From + Pending Out': row(true, 'None + Pending Out'),
    'Both': row(true, 'To'),
  },
};

/** §A.3: server processing of inbound presence subscription stanzas (DELIVER?). */
export const INBOUND_TABLES: Readonly<Record<SubscriptionStanza, Table>> = {
  // §A.3.1 (the three "no *" rows: the server SHOULD auto-reply with "subscribed")
  subscribe: {
    'None': row(true, 'None + Pending In'),
    'None + Pending Out': row(true, 'None + Pending Out+In'),
    'None + Pending In': row(false, null),
    'None + Pending Out+In': row(false, null),
    'To': row(true, 'To + Pending In'),
    'To + Pending In': row(false, null),
    'From': row(false, null),
    'From + Pending Out': row(false, null),
    'Both': row(false, null),
  },
  // §A.3.2
  subscribed: {
    'None': row(false, null),
    'None + Pending Out': row(true, 'To'),
    'None + Pending In': row(false, null),
    'None + Pending Out+In': row(true, 'To + Pending In'),
    'To': row(false, null),
    'To + Pending In': row(false, null),
    'From': row(false, null),
    'From + Pending Out': row(true, 'Both'),
    'Both': row(false, null),
  },
  // §A.3.3
  unsubscribe: {
    'None': row(false, null),
    'None + Pending Out': row(false, null),
    'None + Pending In': row(true, 'None'),
    'None + Pending Out+In': row(true, 'None + Pending Out'),
    'To': row(false, null),
    'To + Pending In': row(true, 'To'),
    'From': row(true, 'None'),
    'From + Pending Out': row(true, 'None + Pending Out'),
    'Both': row(true, 'To'),
  },
  // §A.3.4
  unsubscribed: {
    'None': row(false, null),
    'None + Pending Out': row(true, 'None'),
    'None + Pending In': row(false, null),
    'None + Pending Out+In': row(true, 'None + Pending In'),
    'To': row(true, 'None'),
    'To + Pending In': row(true, 'None + Pending In'),
    'From': row(false, null),
    'From + Pending Out': row(true, 'From'),
    'Both': row(true, 'From'),
  },
};

/** The roster-side view of a state: subscription attribute, ask='subscribe', and an unanswered inbound request. */
export interface StateFields {
  readonly subscription: RosterSubscription;
  /** "Pending Out": the user asked the contact (the roster item's ask='subscribe'). */
  readonly pendingOut: boolean;
  /** "Pending In": the contact asked the user and has no answer yet. */
  readonly pendingIn: boolean;
}

const FIELDS: Readonly<Record<SubscriptionState, StateFields>> = {
  'None': { subscription: 'none', pendingOut: false, pendingIn: false },
  'None + Pending Out': { subscription: 'none', pendingOut: true, pendingIn: false },
  'None + Pending In': { subscription: 'none', pendingOut: false, pendingIn: true },
  'None + Pending Out+In': { subscription: 'none', pendingOut: true, pendingIn: true },
  'To': { subscription: 'to', pendingOut: false, pendingIn: false },
  'To + Pending In': { subscription: 'to', pendingOut: false, pendingIn: true },
  'From': { subscription: 'from', pendingOut: false, pendingIn: false },
  'From + Pending Out': { subscription: 'from', pendingOut: true, pendingIn: false },
  'Both': { subscription: 'both', pendingOut: false, pendingIn: false },
};

export function fieldsOf(state: SubscriptionState): StateFields {
  return FIELDS[state];
}

/**
 * The state for stored roster fields. Combinations the RFC does not define (a pending
 * request in a direction that is already subscribed) collapse to the subscribed state:
 * the pending flag is meaningless there.
 */
export function stateOf(f: StateFields): SubscriptionState {
  switch (f.subscription) {
    case 'both':
      return 'Both';
    case 'to':
      return f.pendingIn ? 'To + Pending In' : 'To';
    case 'from':
      return f.pendingOut ? 'From + Pending Out' : 'From';
    case 'none':
      if (f.pendingOut) return f.pendingIn ? 'None + Pending Out+In' : 'None + Pending Out';
      return f.pendingIn ? 'None + Pending In' : 'None';
  }
}

/** What the server does with one subscription stanza. */
export interface Outcome {
  /** Route the stanza to the contact (outbound) or deliver it to the user's available resources (inbound). */
  readonly forward: boolean;
  /** The state afterwards; equal to the state before when nothing changes. */
  readonly next: SubscriptionState;
  /** The new value of the pre-approval flag (RFC 6121 §3.4), when it changes. */
  readonly approved?: boolean;
  /** The server itself answers the contact with this stanza, on the user's behalf. */
  readonly autoReply?: 'subscribed';
}

/** States in which an outbound "subscribed" is a pre-approval rather than an answer (RFC 6121 §3.4.1). */
const PRE_APPROVABLE: ReadonlySet<SubscriptionState> = new Set(['None', 'None + Pending Out', 'To']);

/**
 * RFC 6121 §A.2 plus §3.4: the user's client sent `type` to the contact.
 * - "subscribed" with no request to answer, in None, None + Pending Out or To, records a
 *   pre-approval when the server supports it (§3.4.1); it is never routed.
 * - "unsubscribed" cancels a pre-approval (and is only routed where the table says so).
 */
export function outbound(
  type: SubscriptionStanza,
  state: SubscriptionState,
  opts: { approved?: boolean; preApproval?: boolean } = {},
): Outcome {
  const r = OUTBOUND_TABLES[type][state];
  const out: { forward: boolean; next: SubscriptionState; approved?: boolean } = { forward: r.forward, next: r.next ?? state };
  if (type === 'subscribed' && opts.preApproval === true && PRE_APPROVABLE.has(state) && opts.approved !== true) out.approved = true;
  if (type === 'unsubscribed' && opts.approved === true) out.approved = false;
  return out;
}

/** What a pre-approved contact's request turns into (§3.4: "as if the contact had sent subscribed"). */
const PRE_APPROVED_NEXT: Readonly<Partial<Record<SubscriptionState, SubscriptionState>>> = {
  'None': 'From',
  'None + Pending Out': 'From + Pending Out',
  'To': 'Both',
};

/**
 * RFC 6121 §A.3 plus §3.1.3 and §3.4: the contact sent `type` to the user.
 * - "subscribe" from a contact that is already subscribed (From, From + Pending Out, Both)
 *   is answered with "subscribed" by the server (the "no *" rows of §A.3.1).
 * - "subscribe" from a pre-approved contact is approved by the server without asking the
 *   user: not delivered, answered with "subscribed", and the pre-approval is used up.
 */
export function inbound(type: SubscriptionStanza, state: SubscriptionState, opts: { approved?: boolean } = {}): Outcome {
  if (type === 'subscribe') {
    const approvedNext = PRE_APPROVED_NEXT[state];
    if (opts.approved === true && approvedNext !== undefined) {
      return { forward: false, next: approvedNext, approved: false, autoReply: 'subscribed' };
    }
    if (state === 'From' || state === 'From + Pending Out' || state === 'Both') {
      return { forward: false, next: state, autoReply: 'subscribed' };
    }
  }
  const r = INBOUND_TABLES[type][state];
  return { forward: r.forward, next: r.next ?? state };
}

/** True when the contact receives the user's presence (subscription 'from' or 'both'). */
export function contactSubscribed(state: SubscriptionState): boolean {
  const s = FIELDS[state].subscription;
  return s === 'from' || s === 'both';
}
