import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import { defineModule, Element, NS_STANZAS, x } from '../../src';
import roster, { NS_ROSTER, type RosterService } from '../../modules/roster';
import presence, { NS_DELAY, NS_PREAPPROVAL } from '../../modules/presence';

const NOW = 1_700_000_000_000;
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

/** What the server sent, with roster push ids (random) replaced by 'push'. */
function take(s: FakeSession): Element[] {
  return s.take().map((el) =>
    el.name === 'iq' && el.attrs.type === 'set' && el.attrs.id?.startsWith('push-') ? el.withAttrs({ id: 'push' }) : el,
  );
}

/** A roster push of one item with the given attributes. */
function push(to: string, ver: number, item: Record<string, string>): Element {
  return x('iq', { type: 'set', id: 'push', to }, x('query', { xmlns: NS_ROSTER, ver }, x('item', item)));
}

function pres(attrs: Record<string, string>, ...children: Element[]): Element {
  return x('presence', attrs, ...children);
}

function presenceError(to: string, type: string, condition: string, text: string): Element {
  return x(
    'presence',
    { type: 'error', from: 'example.test', to },
    x('error', { type }, x(condition, { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text)),
  );
}

describe('presence (RFC 6121 §3, §4)', () => {
  let host: TestHost;
  let svc: RosterService | undefined;
  let initial: string[];

  /** Gets the roster service and records presence/initial events, as other modules would. */
  const spy = defineModule({
    name: 'spy',
    setup(api) {
      svc = api.service('roster');
      api.hook('presence/initial', ({ session }) => {
        initial.push(`${session.jid.toString()} priority ${session.priority}`);
      });
    },
  });

  beforeEach(async () => {
    jest.spyOn(Date, 'now').mockReturnValue(NOW);
    initial = [];
    host = await createTestHost({ modules: [roster, presence, spy] });
  });
  afterEach(async () => {
    await host.close();
    jest.restoreAllMocks();
  });

  /** Logs in like a client: bind, roster get, initial presence; what it received is discarded. */
  async function online(fullJid: string, presenceStanza: Element = x('presence')): Promise<FakeSession> {
    const s = await host.connect(fullJid);
    await s.receive(x('iq', { type: 'get', id: 'roster' }, x('query', { xmlns: NS_ROSTER })));
    await s.receive(presenceStanza);
    s.take();
    return s;
  }

  /** Sets a subscription state on both sides directly (the handshake itself is tested below). */
  async function subscribe(user: string, contact: string, userSide: 'to' | 'from' | 'both', contactSide: 'to' | 'from' | 'both'): Promise<void> {
    await svc!.modify(user, contact, () => ({ subscription: userSide }));
    await svc!.modify(contact, user, () => ({ subscription: contactSide }));
  }

  describe('the subscription handshake', () => {
    it('subscribe, approve, and the other way round, with roster pushes on both sides', async () => {
      const phone = await online(`${ALICE}/phone`);
      const laptop = await online(`${ALICE}/laptop`);
      const bob = await online(`${BOB}/desk`);
      take(phone);
      take(laptop);

      // RFC 6121 §3.1.2: alice asks; her roster shows the pending request, bob gets it.
      await phone.receive(pres({ type: 'subscribe', to: BOB, id: 'sub1' }));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW, { jid: BOB, subscription: 'none', ask: 'subscribe' })]);
      expect(take(laptop)).toEqual([push(`${ALICE}/laptop`, NOW, { jid: BOB, subscription: 'none', ask: 'subscribe' })]);
      expect(take(bob)).toEqual([pres({ type: 'subscribe', id: 'sub1', from: ALICE, to: BOB })]);

      // §A.1: the request alone does not put alice on bob's roster.
      await bob.receive(x('iq', { type: 'get', id: 'r1' }, x('query', { xmlns: NS_ROSTER })));
      expect(take(bob)).toEqual([x('iq', { type: 'result', id: 'r1', to: `${BOB}/desk` }, x('query', { xmlns: NS_ROSTER, ver: '0' }))]);

      // §3.1.5: bob approves. Both rosters change; alice gets the approval and bob's presence.
      await bob.receive(pres({ type: 'subscribed', to: ALICE, id: 'sub2' }));
      expect(take(bob)).toEqual([push(`${BOB}/desk`, NOW, { jid: ALICE, subscription: 'from' })]);
      const aliceSees = (to: string) => [
        push(to, NOW + 1, { jid: BOB, subscription: 'to' }),
        pres({ type: 'subscribed', id: 'sub2', from: BOB, to: ALICE }),
        pres({ from: `${BOB}/desk`, to: ALICE }),
      ];
      expect(take(phone)).toEqual(aliceSees(`${ALICE}/phone`));
      expect(take(laptop)).toEqual(aliceSees(`${ALICE}/laptop`));

      // Now bob asks alice, and alice approves: subscription 'both' on both sides.
      await bob.receive(pres({ type: 'subscribe', to: ALICE, id: 'sub3' }));
      expect(take(bob)).toEqual([push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'from', ask: 'subscribe' })]);
      expect(take(phone)).toEqual([pres({ type: 'subscribe', id: 'sub3', from: BOB, to: ALICE })]);
      expect(take(laptop)).toEqual([pres({ type: 'subscribe', id: 'sub3', from: BOB, to: ALICE })]);

      await laptop.receive(pres({ type: 'subscribed', to: BOB, id: 'sub4' }));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW + 2, { jid: BOB, subscription: 'both' })]);
      expect(take(laptop)).toEqual([push(`${ALICE}/laptop`, NOW + 2, { jid: BOB, subscription: 'both' })]);
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW + 2, { jid: ALICE, subscription: 'both' }),
        pres({ type: 'subscribed', id: 'sub4', from: ALICE, to: BOB }),
        pres({ from: `${ALICE}/phone`, to: BOB }),
        pres({ from: `${ALICE}/laptop`, to: BOB }),
      ]);
      expect(await svc!.subscription(ALICE, BOB)).toBe('both');
      expect(await svc!.subscription(BOB, ALICE)).toBe('both');
    });

    it('stamps the bare JIDs and keeps the request payload (§3.1.2)', async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);
      const nick = x('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Ally');
      await phone.receive(pres({ type: 'subscribe', to: `${BOB}/desk`, id: 's' }, x('status', null, 'Hi'), nick));
      expect(take(bob)).toEqual([pres({ type: 'subscribe', id: 's', from: ALICE, to: BOB }, x('status', null, 'Hi'), nick)]);
    });

    it('answers a request for an account that does not exist with "unsubscribed"', async () => {
      const phone = await online(`${ALICE}/phone`);
      await phone.receive(pres({ type: 'subscribe', to: 'ghost@example.test', id: 'g' }));
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW, { jid: 'ghost@example.test', subscription: 'none', ask: 'subscribe' }),
        push(`${ALICE}/phone`, NOW + 1, { jid: 'ghost@example.test', subscription: 'none' }),
        pres({ type: 'unsubscribed', from: 'ghost@example.test', to: ALICE }),
      ]);
    });

    it('auto-replies "subscribed" to a request from a contact that is already subscribed (§A.3.1)', async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);
      await subscribe(ALICE, BOB, 'to', 'from');
      take(phone);
      take(bob);
      await phone.receive(pres({ type: 'subscribe', to: BOB, id: 'again' }));
      // Not delivered to bob; alice's server gets "subscribed" (no state change) and bob's presence.
      expect(take(bob)).toEqual([]);
      expect(take(phone)).toEqual([pres({ from: `${BOB}/desk`, to: ALICE })]);
    });

    it('delivers a pending request at every login until it is answered (§3.1.3)', async () => {
      await host.core.createUser(CAROL, 'secret');
      const phone = await online(`${ALICE}/phone`);
      await phone.receive(pres({ type: 'subscribe', to: CAROL, id: 'sub1' }, x('status', null, "It's me")));
      take(phone);
      const request = pres({ type: 'subscribe', id: 'sub1', from: ALICE, to: CAROL }, x('status', null, "It's me"));

      const pc = await host.connect(`${CAROL}/pc`);
      await pc.receive(x('presence'));
      expect(take(pc)).toEqual([pres({ from: `${CAROL}/pc`, to: `${CAROL}/pc` }), request]);
      await host.disconnect(pc);

      // Unanswered: delivered again at the next login.
      const pc2 = await host.connect(`${CAROL}/pc`);
      await pc2.receive(x('presence'));
      expect(take(pc2)).toEqual([pres({ from: `${CAROL}/pc`, to: `${CAROL}/pc` }), request]);

      // Declined: alice's request is gone, and so is carol's record of it.
      await pc2.receive(pres({ type: 'unsubscribed', to: ALICE }));
      expect(take(pc2)).toEqual([]);
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW + 1, { jid: CAROL, subscription: 'none' }),
        pres({ type: 'unsubscribed', from: CAROL, to: ALICE }),
      ]);
      expect(await svc!.pendingRequests(CAROL)).toEqual([]);
      const pc3 = await host.connect(`${CAROL}/laptop`);
      await pc3.receive(x('presence'));
      expect(take(pc3)).toEqual([
        pres({ from: `${CAROL}/laptop`, to: `${CAROL}/laptop` }),
        pres({ from: `${CAROL}/pc`, to: `${CAROL}/laptop` }),
      ]);
    });

    it('does not deliver a request to resources that are connected but not available', async () => {
      const phone = await online(`${ALICE}/phone`);
      const quiet = await host.connect(`${BOB}/quiet`);
      const desk = await online(`${BOB}/desk`);
      await phone.receive(pres({ type: 'subscribe', to: BOB }));
      expect(take(desk)).toEqual([pres({ type: 'subscribe', from: ALICE, to: BOB })]);
      expect(take(quiet)).toEqual([]);
    });
  });

  describe('roster limits', () => {
    beforeEach(async () => {
      await host.close();
      host = await createTestHost({ modules: [roster, presence, spy], options: { roster: { maxItems: 1 } } });
    });

    it('refuses a subscription request that would add an item to a full roster', async () => {
      const phone = await online(`${ALICE}/phone`);
      await phone.receive(pres({ type: 'subscribe', to: BOB }));
      take(phone);
      await phone.receive(pres({ type: 'subscribe', to: CAROL, id: 'full' }));
      expect(take(phone)).toEqual([
        x('presence', { type: 'error', id: 'full', from: CAROL, to: `${ALICE}/phone` },
          x('error', { type: 'cancel' }, x('not-allowed', { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, 'The roster is full (at most 1 items)'))),
      ]);
      expect((await svc!.items(ALICE)).map((i) => i.jid)).toEqual([BOB]);
    });

    it('keeps at most maxItems unanswered requests', async () => {
      const bob = await online(`${BOB}/desk`);
      const phone = await online(`${ALICE}/phone`);
      const pc = await online(`${CAROL}/pc`);
      await phone.receive(pres({ type: 'subscribe', to: BOB }));
      await pc.receive(pres({ type: 'subscribe', to: BOB }));
      expect(take(bob)).toEqual([pres({ type: 'subscribe', from: ALICE, to: BOB })]);
      expect((await svc!.pendingRequests(BOB)).map((r) => r.jid)).toEqual([ALICE]);
    });
  });

  describe('pre-approval (§3.4)', () => {
    it('is offered as a stream feature (§3.4.1)', () => {
      expect(host.core.modules.streamFeatures()).toContainEqual(x('sub', { xmlns: NS_PREAPPROVAL }));
    });

    it('approves a later request without asking the contact', async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);

      await bob.receive(pres({ type: 'subscribed', to: ALICE, id: 'pre' }));
      expect(take(bob)).toEqual([push(`${BOB}/desk`, NOW, { jid: ALICE, subscription: 'none', approved: 'true' })]);
      expect(take(phone)).toEqual([]); // not routed

      await phone.receive(pres({ type: 'subscribe', to: BOB, id: 'sub' }));
      // Bob is not asked; his roster shows alice as subscribed, the pre-approval used up.
      expect(take(bob)).toEqual([push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'from' })]);
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW, { jid: BOB, subscription: 'none', ask: 'subscribe' }),
        push(`${ALICE}/phone`, NOW + 1, { jid: BOB, subscription: 'to' }),
        pres({ type: 'subscribed', from: BOB, to: ALICE }),
        pres({ from: `${BOB}/desk`, to: ALICE }),
      ]);
    });

    it('is cancelled by "unsubscribed"', async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);
      await bob.receive(pres({ type: 'subscribed', to: ALICE }));
      await bob.receive(pres({ type: 'unsubscribed', to: ALICE }));
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW, { jid: ALICE, subscription: 'none', approved: 'true' }),
        push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'none' }),
      ]);
      await phone.receive(pres({ type: 'subscribe', to: BOB, id: 'sub' }));
      expect(take(bob)).toEqual([pres({ type: 'subscribe', id: 'sub', from: ALICE, to: BOB })]);
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW, { jid: BOB, subscription: 'none', ask: 'subscribe' })]);
    });

    it('is not recorded when the option is off', async () => {
      await host.close();
      host = await createTestHost({ modules: [roster, presence, spy], options: { presence: { preApproval: false } } });
      const bob = await online(`${BOB}/desk`);
      await bob.receive(pres({ type: 'subscribed', to: ALICE }));
      expect(take(bob)).toEqual([]);
      expect(await svc!.get(BOB, ALICE)).toBeUndefined();
    });
  });

  describe('cancelling subscriptions', () => {
    let phone: FakeSession;
    let bob: FakeSession;
    beforeEach(async () => {
      phone = await online(`${ALICE}/phone`);
      bob = await online(`${BOB}/desk`);
      await subscribe(ALICE, BOB, 'both', 'both');
      take(phone);
      take(bob);
    });

    it('unsubscribe (§3.3): the contact is told, and its presence ends for the user', async () => {
      await phone.receive(pres({ type: 'unsubscribe', to: BOB, id: 'u' }));
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW + 1, { jid: BOB, subscription: 'from' }),
        pres({ type: 'unavailable', from: `${BOB}/desk`, to: ALICE }),
      ]);
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'to' }),
        pres({ type: 'unsubscribe', id: 'u', from: ALICE, to: BOB }),
      ]);
    });

    it('unsubscribed (§3.2): the contact loses the subscription and gets unavailable presence', async () => {
      await phone.receive(pres({ type: 'unsubscribed', to: BOB, id: 'u' }));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW + 1, { jid: BOB, subscription: 'to' })]);
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'from' }),
        pres({ type: 'unsubscribed', id: 'u', from: ALICE, to: BOB }),
        pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB }),
      ]);
      // Alice's later presence no longer reaches bob.
      await phone.receive(pres({}, x('show', null, 'away')));
      expect(take(bob)).toEqual([]);
    });

    it('removing the roster item cancels both directions (§2.5.3)', async () => {
      await phone.receive(x('iq', { type: 'set', id: 'rm' }, x('query', { xmlns: NS_ROSTER }, x('item', { jid: BOB, subscription: 'remove' }))));
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW + 1, { jid: BOB, subscription: 'remove' }),
        pres({ type: 'unavailable', from: `${BOB}/desk`, to: ALICE }),
        x('iq', { type: 'result', id: 'rm', to: `${ALICE}/phone` }),
      ]);
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'to' }),
        pres({ type: 'unsubscribe', from: ALICE, to: BOB }),
        push(`${BOB}/desk`, NOW + 2, { jid: ALICE, subscription: 'none' }),
        pres({ type: 'unsubscribed', from: ALICE, to: BOB }),
        pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB }),
      ]);
      expect(await svc!.get(ALICE, BOB)).toBeUndefined();
      expect(await svc!.subscription(BOB, ALICE)).toBe('none');
    });
  });

  describe('presence broadcast', () => {
    it('initial presence goes to subscribers and own resources, probes contacts, and fires presence/initial (§4.2)', async () => {
      const phone = await online(`${ALICE}/phone`);
      const quiet = await host.connect(`${ALICE}/quiet`); // connected, never available
      await subscribe(BOB, ALICE, 'both', 'both');
      take(phone);
      initial = [];

      const desk = await host.connect(`${BOB}/desk`);
      await desk.receive(pres({}, x('show', null, 'chat'), x('priority', null, '5')));
      const bobPresence = (to: string) => pres({ from: `${BOB}/desk`, to }, x('show', null, 'chat'), x('priority', null, '5'));
      expect(take(phone)).toEqual([bobPresence(ALICE)]);
      expect(take(quiet)).toEqual([]);
      expect(take(desk)).toEqual([
        bobPresence(`${BOB}/desk`), // own presence, to the resource itself
        pres({ from: `${ALICE}/phone`, to: BOB }), // the answer to bob's probe
      ]);
      expect(desk.priority).toBe(5);
      expect(initial).toEqual([`${BOB}/desk priority 5`]);

      // Subsequent presence: broadcast again, but it is not "initial" any more (§4.4).
      await desk.receive(pres({}, x('show', null, 'away')));
      expect(take(phone)).toEqual([pres({ from: `${BOB}/desk`, to: ALICE }, x('show', null, 'away'))]);
      expect(take(desk)).toEqual([pres({ from: `${BOB}/desk`, to: `${BOB}/desk` }, x('show', null, 'away'))]);
      expect(desk.priority).toBe(0);
      expect(initial).toEqual([`${BOB}/desk priority 5`]);
    });

    it("shows an account's resources to each other", async () => {
      const phone = await online(`${ALICE}/phone`);
      const laptop = await host.connect(`${ALICE}/laptop`);
      await laptop.receive(pres({}, x('status', null, 'at work')));
      expect(take(phone)).toEqual([pres({ from: `${ALICE}/laptop`, to: `${ALICE}/phone` }, x('status', null, 'at work'))]);
      expect(take(laptop)).toEqual([
        pres({ from: `${ALICE}/laptop`, to: `${ALICE}/laptop` }, x('status', null, 'at work')),
        pres({ from: `${ALICE}/phone`, to: `${ALICE}/laptop` }),
      ]);
    });

    it('does not send presence to contacts that are not subscribed', async () => {
      const bob = await online(`${BOB}/desk`);
      await subscribe(ALICE, BOB, 'to', 'from'); // alice sees bob, not the other way round
      take(bob);
      const phone = await host.connect(`${ALICE}/phone`);
      await phone.receive(x('presence'));
      expect(take(bob)).toEqual([]);
      expect(take(phone)).toEqual([pres({ from: `${ALICE}/phone`, to: `${ALICE}/phone` }), pres({ from: `${BOB}/desk`, to: ALICE })]);
    });

    it('refuses a bad priority or show with bad-request, and stays unavailable', async () => {
      const phone = await host.connect(`${ALICE}/phone`);
      await phone.receive(pres({}, x('priority', null, '128')));
      await phone.receive(pres({}, x('priority', null, 'high')));
      await phone.receive(pres({}, x('priority', null, '1'), x('priority', null, '2')));
      await phone.receive(pres({}, x('show', null, 'sleeping')));
      await phone.receive(pres({ type: 'bogus' }));
      const prio = 'The priority must be an integer from -128 to 127';
      expect(take(phone)).toEqual([
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', prio),
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', prio),
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', 'Presence carries at most one <priority/>'),
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', 'The show value must be away, chat, dnd or xa'),
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', 'Unknown presence type "bogus"'),
      ]);
      expect(phone.presence).toBeUndefined();
      expect(initial).toEqual([]);
      await phone.receive(pres({}, x('priority', null, '-128')));
      expect(phone.priority).toBe(-128);
      expect(initial).toEqual([`${ALICE}/phone priority -128`]);
    });

    it('refuses subscription stanzas without a contact or to oneself', async () => {
      const phone = await online(`${ALICE}/phone`);
      await phone.receive(pres({ type: 'subscribe' }));
      await phone.receive(pres({ type: 'subscribe', to: ALICE }));
      expect(take(phone)).toEqual([
        presenceError(`${ALICE}/phone`, 'modify', 'bad-request', "A presence of type subscribe needs a 'to' address"),
        x('presence', { type: 'error', from: ALICE, to: `${ALICE}/phone` },
          x('error', { type: 'cancel' }, x('not-allowed', { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, 'An account is always subscribed to its own presence'))),
      ]);
    });
  });

  describe('unavailable presence', () => {
    let phone: FakeSession;
    let laptop: FakeSession;
    let bob: FakeSession;
    beforeEach(async () => {
      await subscribe(ALICE, BOB, 'both', 'both');
      phone = await online(`${ALICE}/phone`);
      laptop = await online(`${ALICE}/laptop`);
      bob = await online(`${BOB}/desk`);
      take(phone);
      take(laptop);
    });

    it('goes to subscribers and own resources when the client sends it (§4.5)', async () => {
      await phone.receive(pres({ type: 'unavailable' }, x('status', null, 'bye')));
      expect(take(bob)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB }, x('status', null, 'bye'))]);
      expect(take(laptop)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: `${ALICE}/laptop` }, x('status', null, 'bye'))]);
      expect(take(phone)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: `${ALICE}/phone` }, x('status', null, 'bye'))]);
      expect(phone.presence).toBeUndefined();
      // The stream closing later sends nothing more.
      await host.disconnect(phone);
      expect(take(bob)).toEqual([]);
      expect(take(laptop)).toEqual([]);
    });

    it('is sent for a session that ends while available', async () => {
      await host.disconnect(phone);
      expect(take(bob)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB })]);
      expect(take(laptop)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: `${ALICE}/laptop` })]);
    });

    it('answers probes with the last unavailable presence once no resource is left (§4.3.2)', async () => {
      await host.disconnect(phone);
      await laptop.receive(pres({ type: 'unavailable' }, x('status', null, 'gone fishing')));
      take(bob);
      const bob2 = await host.connect(`${BOB}/tablet`);
      await bob2.receive(x('presence'));
      expect(take(bob2)).toEqual([
        pres({ from: `${BOB}/tablet`, to: `${BOB}/tablet` }),
        pres({ from: `${BOB}/desk`, to: `${BOB}/tablet` }),
        pres({ type: 'unavailable', from: ALICE, to: BOB }, x('status', null, 'gone fishing'),
          x('delay', { xmlns: NS_DELAY, from: 'example.test', stamp: new Date(NOW).toISOString() })),
      ]);
    });

    it('answers a probe for a contact that never logged in with plain unavailable', async () => {
      await host.core.createUser(CAROL, 'secret');
      await subscribe(BOB, CAROL, 'to', 'from');
      take(bob);
      const bob2 = await host.connect(`${BOB}/tablet`);
      await bob2.receive(x('presence'));
      expect(take(bob2)).toEqual([
        pres({ from: `${BOB}/tablet`, to: `${BOB}/tablet` }),
        pres({ from: `${BOB}/desk`, to: `${BOB}/tablet` }),
        pres({ from: `${ALICE}/phone`, to: BOB }),
        pres({ from: `${ALICE}/laptop`, to: BOB }),
        pres({ type: 'unavailable', from: CAROL, to: BOB }),
      ]);
    });

    it('a probe for an account that does not exist is answered "unsubscribed", ending the stale subscription', async () => {
      await svc!.modify(BOB, 'ghost@example.test', () => ({ subscription: 'to' }));
      take(bob);
      const bob2 = await host.connect(`${BOB}/tablet`);
      await bob2.receive(x('presence'));
      expect(take(bob2).at(-1)).toEqual(pres({ type: 'unsubscribed', from: 'ghost@example.test', to: BOB }));
      expect(take(bob)).toEqual([
        pres({ from: `${BOB}/tablet`, to: `${BOB}/desk` }),
        pres({ from: `${ALICE}/phone`, to: BOB }),
        pres({ from: `${ALICE}/laptop`, to: BOB }),
        push(`${BOB}/desk`, NOW + 2, { jid: 'ghost@example.test', subscription: 'none' }),
        pres({ type: 'unsubscribed', from: 'ghost@example.test', to: BOB }),
      ]);
      expect(await svc!.subscription(BOB, 'ghost@example.test')).toBe('none');
    });
  });

  describe('probes', () => {
    it('a subscriber probing gets the presence of each available resource; others learn nothing', async () => {
      const phone = await online(`${ALICE}/phone`, pres({}, x('show', null, 'dnd')));
      const bob = await online(`${BOB}/desk`);
      const carol = await online(`${CAROL}/pc`);
      await subscribe(ALICE, BOB, 'from', 'to');
      take(phone);
      take(bob);
      await bob.receive(pres({ type: 'probe', to: ALICE, id: 'p1' }));
      expect(take(bob)).toEqual([pres({ from: `${ALICE}/phone`, to: `${BOB}/desk` }, x('show', null, 'dnd'))]);
      await carol.receive(pres({ type: 'probe', to: ALICE, id: 'p2' }));
      expect(take(carol)).toEqual([]);
      expect(take(phone)).toEqual([]); // probes are never delivered to clients
    });
  });

  describe('directed presence (§4.6)', () => {
    let phone: FakeSession;
    let carol: FakeSession;
    let bob: FakeSession;
    beforeEach(async () => {
      await subscribe(ALICE, BOB, 'both', 'both');
      phone = await online(`${ALICE}/phone`);
      bob = await online(`${BOB}/desk`);
      carol = await online(`${CAROL}/pc`);
      take(phone);
    });

    it('reaches the addressee only, and gets unavailable when the session ends', async () => {
      await phone.receive(pres({ to: `${CAROL}/pc`, id: 'd1' }, x('status', null, 'psst')));
      expect(take(carol)).toEqual([pres({ to: `${CAROL}/pc`, id: 'd1', from: `${ALICE}/phone` }, x('status', null, 'psst'))]);
      expect(take(bob)).toEqual([]);
      await host.disconnect(phone);
      expect(take(carol)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: `${CAROL}/pc` })]);
      expect(take(bob)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB })]);
    });

    it('to a bare JID reaches all available resources, and the broadcast unavailable reaches them too', async () => {
      const laptop = await online(`${CAROL}/laptop`);
      take(carol);
      await phone.receive(pres({ to: CAROL }));
      expect(take(carol)).toEqual([pres({ to: CAROL, from: `${ALICE}/phone` })]);
      expect(take(laptop)).toEqual([pres({ to: CAROL, from: `${ALICE}/phone` })]);
      await phone.receive(pres({ type: 'unavailable' }));
      expect(take(carol)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: CAROL })]);
    });

    it('is forgotten after directed unavailable', async () => {
      await phone.receive(pres({ to: `${CAROL}/pc` }));
      await phone.receive(pres({ to: `${CAROL}/pc`, type: 'unavailable' }));
      expect(take(carol)).toEqual([
        pres({ to: `${CAROL}/pc`, from: `${ALICE}/phone` }),
        pres({ to: `${CAROL}/pc`, type: 'unavailable', from: `${ALICE}/phone` }),
      ]);
      await host.disconnect(phone);
      expect(take(carol)).toEqual([]);
    });

    it('to a subscriber is not tracked: the broadcast covers it', async () => {
      await phone.receive(pres({ to: BOB }, x('show', null, 'xa')));
      expect(take(bob)).toEqual([pres({ to: BOB, from: `${ALICE}/phone` }, x('show', null, 'xa'))]);
      await host.disconnect(phone);
      expect(take(bob)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/phone`, to: BOB })]);
    });

    it('from a session that never sent initial presence still gets unavailable at the end', async () => {
      const quiet = await host.connect(`${ALICE}/quiet`);
      await quiet.receive(pres({ to: `${CAROL}/pc` }));
      take(carol);
      await host.disconnect(quiet);
      expect(take(carol)).toEqual([pres({ type: 'unavailable', from: `${ALICE}/quiet`, to: `${CAROL}/pc` })]);
      expect(take(bob)).toEqual([]);
    });
  });

  describe('other presence', () => {
    it('passes presence errors through to the addressed resource', async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);
      const err = x('error', { type: 'cancel' }, x('remote-server-not-found', { xmlns: NS_STANZAS }));
      await bob.receive(pres({ type: 'error', to: `${ALICE}/phone` }, err));
      expect(take(phone)).toEqual([pres({ type: 'error', to: `${ALICE}/phone`, from: `${BOB}/desk` }, err)]);
    });
  });

  describe('persistence and lifecycle', () => {
    it('keeps pending requests across unload and load', async () => {
      await host.core.createUser(CAROL, 'secret');
      const phone = await online(`${ALICE}/phone`);
      await phone.receive(pres({ type: 'subscribe', to: CAROL, id: 's' }));
      await host.core.modules.unload('spy');
      await host.core.modules.unload('presence');
      await host.core.modules.unload('roster');
      await host.core.modules.load(roster);
      await host.core.modules.load(presence);
      const pc = await host.connect(`${CAROL}/pc`);
      await pc.receive(x('presence'));
      expect(take(pc)).toEqual([pres({ from: `${CAROL}/pc`, to: `${CAROL}/pc` }), pres({ type: 'subscribe', id: 's', from: ALICE, to: CAROL })]);
    });

    it("deletes an account's presence data and cancels its subscriptions", async () => {
      const phone = await online(`${ALICE}/phone`);
      const bob = await online(`${BOB}/desk`);
      await subscribe(ALICE, BOB, 'both', 'both');
      await phone.receive(pres({ type: 'unavailable' }));
      take(bob);
      const rows = () => host.core.db.prepare('SELECT COUNT(*) FROM presence_last_unavailable WHERE user_jid = ?').pluck().get(ALICE);
      expect(rows()).toBe(1);
      await host.core.deleteUser(ALICE);
      expect(rows()).toBe(0);
      expect(take(bob)).toEqual([
        push(`${BOB}/desk`, NOW + 1, { jid: ALICE, subscription: 'to' }),
        pres({ type: 'unsubscribe', from: ALICE, to: BOB }),
        push(`${BOB}/desk`, NOW + 2, { jid: ALICE, subscription: 'none' }),
        pres({ type: 'unsubscribed', from: ALICE, to: BOB }),
      ]);
    });
  });
});

describe('pre-approval stream feature', () => {
  it('is advertised only while pre-approval is on', async () => {
    const on = await createTestHost({ modules: [roster, presence] });
    expect(on.core.modules.streamFeatures().map(String)).toContain('<sub xmlns="urn:xmpp:features:pre-approval"/>');
    await on.close();
    const off = await createTestHost({ modules: [roster, presence], options: { presence: { preApproval: false } } });
    expect(off.core.modules.streamFeatures().map(String)).not.toContain('<sub xmlns="urn:xmpp:features:pre-approval"/>');
    await off.close();
  });
});
