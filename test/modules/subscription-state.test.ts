import {
  INBOUND_TABLES,
  OUTBOUND_TABLES,
  SUBSCRIPTION_STATES,
  contactSubscribed,
  fieldsOf,
  inbound,
  outbound,
  stateOf,
  type SubscriptionStanza,
  type SubscriptionState,
} from '../../modules/presence/subscription-state';

/**
 * RFC 6121 Appendix A, transcribed row by row: [existing state, ROUTE?/DELIVER?, new state],
 * where 'no state change' is written as in the RFC. Kept separate from the module's tables
 * so that a typo in either shows up as a failing row.
 */
type Rows = [SubscriptionState, 'yes' | 'no', SubscriptionState | 'no state change'][];

const A2: Record<SubscriptionStanza, Rows> = {
  // A.2.1 Subscribe
  subscribe: [
    ['None', 'yes', 'None + Pending Out'],
    ['None + Pending Out', 'yes', 'no state change'],
    ['None + Pending In', 'yes', 'None + Pending Out+In'],
    ['None + Pending Out+In', 'yes', 'no state change'],
    ['To', 'yes', 'no state change'],
    ['To + Pending In', 'yes', 'no state change'],
    ['From', 'yes', 'From + Pending Out'],
    ['From + Pending Out', 'yes', 'no state change'],
    ['Both', 'yes', 'no state change'],
  ],
  // A.2.2 Subscribed
  subscribed: [
    ['None', 'no', 'no state change'],
    ['None + Pending Out', 'no', 'no state change'],
    ['None + Pending In', 'yes', 'From'],
    ['None + Pending Out+In', 'yes', 'From + Pending Out'],
    ['To', 'no', 'no state change'],
    ['To + Pending In', 'yes', 'Both'],
    ['From', 'no', 'no state change'],
    ['From + Pending Out', 'no', 'no state change'],
    ['Both', 'no', 'no state change'],
  ],
  // A.2.3 Unsubscribe
  unsubscribe: [
    ['None', 'yes', 'no state change'],
    ['None + Pending Out', 'yes', 'None'],
    ['None + Pending In', 'yes', 'no state change'],
    ['None + Pending Out+In', 'yes', 'None + Pending In'],
    ['To', 'yes', 'None'],
    ['To + Pending In', 'yes', 'None + Pending In'],
    ['From', 'yes', 'no state change'],
    ['From + Pending Out', 'yes', 'From'],
    ['Both', 'yes', 'From'],
  ],
  // A.2.4 Unsubscribed
  unsubscribed: [
    ['None', 'no', 'no state change'],
    ['None + Pending Out', 'no', 'no state change'],
    ['None + Pending In', 'yes', 'None'],
    ['None + Pending Out+In', 'yes', 'None + Pending Out'],
    ['To', 'no', 'no state change'],
    ['To + Pending In', 'yes', 'To'],
    ['From', 'yes', 'None'],
    ['From + Pending Out', 'yes', 'None + Pending Out'],
    ['Both', 'yes', 'To'],
  ],
};

const A3: Record<SubscriptionStanza, Rows> = {
  // A.3.1 Subscribe
  subscribe: [
    ['None', 'yes', 'None + Pending In'],
    ['None + Pending Out', 'yes', 'None + Pending Out+In'],
    ['None + Pending In', 'no', 'no state change'],
    ['None + Pending Out+In', 'no', 'no state change'],
    ['To', 'yes', 'To + Pending In'],
    ['To + Pending In', 'no', 'no state change'],
    ['From', 'no', 'no state change'],
    ['From + Pending Out', 'no', 'no state change'],
    ['Both', 'no', 'no state change'],
  ],
  // A.3.2 Subscribed
  subscribed: [
    ['None', 'no', 'no state change'],
    ['None + Pending Out', 'yes', 'To'],
    ['None + Pending In', 'no', 'no state change'],
    ['None + Pending Out+In', 'yes', 'To + Pending In'],
    ['To', 'no', 'no state change'],
    ['To + Pending In', 'no', 'no state change'],
    ['From', 'no', 'no state change'],
    ['From + Pending Out', 'yes', 'Both'],
    ['Both', 'no', 'no state change'],
  ],
  // A.3.3 Unsubscribe
  unsubscribe: [
    ['None', 'no', 'no state change'],
    ['None + Pending Out', 'no', 'no state change'],
    ['None + Pending In', 'yes', 'None'],
    ['None + Pending Out+In', 'yes', 'None + Pending Out'],
    ['To', 'no', 'no state change'],
    ['To + Pending In', 'yes', 'To'],
    ['From', 'yes', 'None'],
    ['From + Pending Out', 'yes', 'None + Pending Out'],
    ['Both', 'yes', 'To'],
  ],
  // A.3.4 Unsubscribed
  unsubscribed: [
    ['None', 'no', 'no state change'],
    ['None + Pending Out', 'yes', 'None'],
    ['None + Pending In', 'no', 'no state change'],
    ['None + Pending Out+In', 'yes', 'None + Pending In'],
    ['To', 'yes', 'None'],
    ['To + Pending In', 'yes', 'None + Pending In'],
    ['From', 'no', 'no state change'],
    ['From + Pending Out', 'yes', 'From'],
    ['Both', 'yes', 'From'],
  ],
};

const TYPES: SubscriptionStanza[] = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'];
const ALREADY_SUBSCRIBED: SubscriptionState[] = ['From', 'From + Pending Out', 'Both'];

function cases(tables: Record<SubscriptionStanza, Rows>): [SubscriptionStanza, SubscriptionState, boolean, SubscriptionState | null][] {
  const out: [SubscriptionStanza, SubscriptionState, boolean, SubscriptionState | null][] = [];
  for (const type of TYPES) {
    for (const [state, fwd, next] of tables[type]) out.push([type, state, fwd === 'yes', next === 'no state change' ? null : next]);
  }
  return out;
}

describe('RFC 6121 Appendix A subscription state machine', () => {
  it('each table covers the nine states of A.1 exactly once', () => {
    for (const t of TYPES) {
      expect(A2[t].map((r) => r[0])).toEqual([...SUBSCRIPTION_STATES]);
      expect(A3[t].map((r) => r[0])).toEqual([...SUBSCRIPTION_STATES]);
      expect(Object.keys(OUTBOUND_TABLES[t]).sort()).toEqual([...SUBSCRIPTION_STATES].sort());
      expect(Object.keys(INBOUND_TABLES[t]).sort()).toEqual([...SUBSCRIPTION_STATES].sort());
    }
  });

  describe('A.2 outbound', () => {
    it.each(cases(A2))('%s in "%s": route=%s, new state %s', (type, state, route, next) => {
      expect(OUTBOUND_TABLES[type][state]).toEqual({ forward: route, next });
      const o = outbound(type, state, { preApproval: false });
      expect(o.forward).toBe(route);
      expect(o.next).toBe(next ?? state);
      expect(o.autoReply).toBeUndefined();
      expect(o.approved).toBeUndefined();
    });
  });

  describe('A.3 inbound', () => {
    it.each(cases(A3))('%s in "%s": deliver=%s, new state %s', (type, state, deliver, next) => {
      expect(INBOUND_TABLES[type][state]).toEqual({ forward: deliver, next });
      const o = inbound(type, state, { approved: false });
      expect(o.forward).toBe(deliver);
      expect(o.next).toBe(next ?? state);
      // A.3.1 "no *": a subscribe from a contact that is already subscribed gets an automatic "subscribed".
      const autoReply = type === 'subscribe' && ALREADY_SUBSCRIBED.includes(state) ? 'subscribed' : undefined;
      expect(o.autoReply).toBe(autoReply);
    });
  });

  describe('pre-approval (RFC 6121 §3.4)', () => {
    it.each<[SubscriptionState, SubscriptionState]>([
      ['None', 'From'],
      ['None + Pending Out', 'From + Pending Out'],
      ['To', 'Both'],
    ])('an outbound "subscribed" in "%s" is a pre-approval, and a later request from the contact becomes "%s"', (state, approvedNext) => {
      expect(outbound('subscribed', state, { preApproval: true })).toEqual({ forward: false, next: state, approved: true });
      expect(inbound('subscribe', state, { approved: true })).toEqual({ forward: false, next: approvedNext, approved: false, autoReply: 'subscribed' });
    });

    it('is not recorded when the server does not offer it, nor twice', () => {
      expect(outbound('subscribed', 'None', { preApproval: false })).toEqual({ forward: false, next: 'None' });
      expect(outbound('subscribed', 'None', { preApproval: true, approved: true })).toEqual({ forward: false, next: 'None' });
    });

    it.each<SubscriptionState>(['None + Pending In', 'None + Pending Out+In', 'To + Pending In', 'From', 'From + Pending Out', 'Both'])(
      'an outbound "subscribed" in "%s" is not a pre-approval',
      (state) => {
        expect(outbound('subscribed', state, { preApproval: true }).approved).toBeUndefined();
      },
    );

    it('an outbound "unsubscribed" cancels a pre-approval without routing it', () => {
      expect(outbound('unsubscribed', 'None', { approved: true })).toEqual({ forward: false, next: 'None', approved: false });
      expect(outbound('unsubscribed', 'To', { approved: true })).toEqual({ forward: false, next: 'To', approved: false });
    });

    it('a pre-approval does not change how other inbound stanzas are handled', () => {
      expect(inbound('subscribed', 'None + Pending Out', { approved: true })).toEqual({ forward: true, next: 'To' });
      expect(inbound('unsubscribed', 'To', { approved: true })).toEqual({ forward: true, next: 'None' });
    });
  });

  describe('state <-> roster fields', () => {
    it.each([...SUBSCRIPTION_STATES])('"%s" round-trips', (state) => {
      expect(stateOf(fieldsOf(state))).toBe(state);
    });

    it('maps to the roster subscription attribute and ask flag', () => {
      expect(fieldsOf('None + Pending Out+In')).toEqual({ subscription: 'none', pendingOut: true, pendingIn: true });
      expect(fieldsOf('From + Pending Out')).toEqual({ subscription: 'from', pendingOut: true, pendingIn: false });
      expect(fieldsOf('To + Pending In')).toEqual({ subscription: 'to', pendingOut: false, pendingIn: true });
    });

    it('ignores a pending flag in a direction that is already subscribed', () => {
      expect(stateOf({ subscription: 'both', pendingOut: true, pendingIn: true })).toBe('Both');
      expect(stateOf({ subscription: 'to', pendingOut: true, pendingIn: false })).toBe('To');
      expect(stateOf({ subscription: 'from', pendingOut: false, pendingIn: true })).toBe('From');
    });

    it('knows which states send the user presence to the contact', () => {
      expect(SUBSCRIPTION_STATES.filter(contactSubscribed)).toEqual(['From', 'From + Pending Out', 'Both']);
    });
  });
});
