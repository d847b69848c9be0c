import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import { defineModule, Element, NS_STANZAS, x } from '../../src';
import roster, { NS_ROSTER, NS_ROSTERVER, type RosterService } from '../../modules/roster';

const NOW = 1_700_000_000_000;
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';

/** What the server sent, with roster push ids (random) replaced by 'push'. */
function take(s: FakeSession): Element[] {
  return s.take().map((el) =>
    el.name === 'iq' && el.attrs.type === 'set' && el.attrs.id?.startsWith('push-') ? el.withAttrs({ id: 'push' }) : el,
  );
}

function push(to: string, ver: number, item: Element): Element {
  return x('iq', { type: 'set', id: 'push', to }, x('query', { xmlns: NS_ROSTER, ver }, item));
}

function result(id: string, to: string, payload?: Element): Element {
  return x('iq', { type: 'result', id, to }, payload);
}

function error(id: string, to: string, type: string, condition: string, text: string): Element {
  return x(
    'iq',
    { type: 'error', id, from: 'example.test', to },
    x('error', { type }, x(condition, { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text)),
  );
}

function get(id: string, ver?: string): Element {
  return x('iq', { type: 'get', id }, x('query', { xmlns: NS_ROSTER, ver }));
}

function set(id: string, ...items: Element[]): Element {
  return x('iq', { type: 'set', id }, x('query', { xmlns: NS_ROSTER }, items));
}

describe('roster (RFC 6121 §2)', () => {
  let host: TestHost;
  let phone: FakeSession;

  beforeEach(async () => {
    jest.spyOn(Date, 'now').mockReturnValue(NOW);
    host = await createTestHost({ modules: [roster, grab] });
    phone = await host.connect(`${ALICE}/phone`);
  });
  afterEach(async () => {
    await host.close();
    jest.restoreAllMocks();
  });

  /** The roster service as another module sees it. */
  let svc: RosterService | undefined;
  const grab = defineModule({
    name: 'grab',
    setup(api) {
      svc = api.service('roster');
    },
  });
  function getService(): RosterService {
    if (!svc) throw new Error('no roster service');
    return svc;
  }

  it('offers roster versioning as a stream feature (§2.6.1)', () => {
    expect(host.core.modules.streamFeatures()).toContainEqual(x('ver', { xmlns: NS_ROSTERVER }));
  });

  describe('roster get', () => {
    it('returns an empty roster with a version and makes the resource interested', async () => {
      expect(phone.rosterRequested).toBe(false);
      await phone.receive(get('r1'));
      expect(take(phone)).toEqual([result('r1', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: '0' }))]);
      expect(phone.rosterRequested).toBe(true);
    });

    it('answers a get addressed to the own bare JID', async () => {
      await phone.receive(x('iq', { type: 'get', id: 'r2', to: ALICE }, x('query', { xmlns: NS_ROSTER })));
      expect(take(phone)).toEqual([
        x('iq', { type: 'result', id: 'r2', to: `${ALICE}/phone`, from: ALICE }, x('query', { xmlns: NS_ROSTER, ver: '0' })),
      ]);
    });

    it("refuses to show another account's roster (forbidden)", async () => {
      await host.connect(`${BOB}/laptop`);
      await phone.receive(x('iq', { type: 'get', id: 'r3', to: BOB }, x('query', { xmlns: NS_ROSTER })));
      await phone.receive(x('iq', { type: 'set', id: 'r4', to: BOB }, x('query', { xmlns: NS_ROSTER }, x('item', { jid: 'carol@example.test' }))));
      expect(take(phone)).toEqual([
        x('iq', { type: 'error', id: 'r3', from: BOB, to: `${ALICE}/phone` },
          x('error', { type: 'auth' }, x('forbidden', { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, 'Only the account itself can use its roster'))),
        x('iq', { type: 'error', id: 'r4', from: BOB, to: `${ALICE}/phone` },
          x('error', { type: 'auth' }, x('forbidden', { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, 'Only the account itself can use its roster'))),
      ]);
    });
  });

  describe('adding, updating and removing items', () => {
    it('adds an item, pushes it to every interested resource and lists it', async () => {
      const laptop = await host.connect(`${ALICE}/laptop`);
      const tablet = await host.connect(`${ALICE}/tablet`); // never asked for the roster
      await phone.receive(get('g1'));
      await laptop.receive(get('g2'));
      take(phone);
      take(laptop);

      await phone.receive(set('s1', x('item', { jid: 'Nurse@Example.Test', name: 'Nurse' }, x('group', null, 'Servants'))));
      const item = x('item', { jid: 'nurse@example.test', name: 'Nurse', subscription: 'none' }, x('group', null, 'Servants'));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW, item), result('s1', `${ALICE}/phone`)]);
      expect(take(laptop)).toEqual([push(`${ALICE}/laptop`, NOW, item)]);
      expect(take(tablet)).toEqual([]);

      await tablet.receive(get('g3'));
      expect(take(tablet)).toEqual([result('g3', `${ALICE}/tablet`, x('query', { xmlns: NS_ROSTER, ver: String(NOW) }, item))]);
    });

    it('updates name and groups, replacing the old groups', async () => {
      await phone.receive(get('g1'));
      await phone.receive(set('s1', x('item', { jid: BOB, name: 'Bob' }, x('group', null, 'Friends'), x('group', null, 'Work'))));
      take(phone);
      await phone.receive(set('s2', x('item', { jid: BOB }, x('group', null, 'Family'))));
      const item = x('item', { jid: BOB, subscription: 'none' }, x('group', null, 'Family'));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW + 1, item), result('s2', `${ALICE}/phone`)]);
      await phone.receive(get('g2'));
      expect(take(phone)).toEqual([result('g2', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: String(NOW + 1) }, item))]);
    });

    it('ignores subscription, ask and approved values in a roster set (§2.1.2)', async () => {
      await phone.receive(set('s1', x('item', { jid: BOB, subscription: 'both', ask: 'subscribe', approved: 'true' })));
      await phone.receive(get('g1'));
      expect(take(phone)).toEqual([
        result('s1', `${ALICE}/phone`),
        result('g1', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: String(NOW) }, x('item', { jid: BOB, subscription: 'none' }))),
      ]);
    });

    it('removes an item with a push of subscription="remove"', async () => {
      await phone.receive(get('g1'));
      await phone.receive(set('s1', x('item', { jid: BOB })));
      take(phone);
      await phone.receive(set('s2', x('item', { jid: BOB, subscription: 'remove' })));
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW + 1, x('item', { jid: BOB, subscription: 'remove' })),
        result('s2', `${ALICE}/phone`),
      ]);
      await phone.receive(get('g2'));
      expect(take(phone)).toEqual([result('g2', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: String(NOW + 1) }))]);
    });

    it('answers item-not-found when removing an item that is not in the roster (§2.5.3)', async () => {
      await phone.receive(set('s1', x('item', { jid: BOB, subscription: 'remove' })));
      expect(take(phone)).toEqual([error('s1', `${ALICE}/phone`, 'cancel', 'item-not-found', 'The item is not in the roster')]);
    });

    it('cancels the subscriptions both ways when an item is removed (§2.5.3)', async () => {
      const bob = await host.connect(`${BOB}/laptop`);
      bob.presence = x('presence'); // available, so presence addressed to bob's bare JID reaches it
      phone.presence = x('presence');
      await getService().modify(ALICE, BOB, () => ({ subscription: 'both' }));
      take(phone);
      await phone.receive(set('s1', x('item', { jid: BOB, subscription: 'remove' })));
      // No presence module is loaded: the router delivers these as they are.
      expect(bob.take()).toEqual([
        x('presence', { type: 'unsubscribe', from: ALICE, to: BOB }),
        x('presence', { type: 'unsubscribed', from: ALICE, to: BOB }),
        x('presence', { type: 'unavailable', from: `${ALICE}/phone`, to: BOB }),
      ]);
      expect(take(phone)).toEqual([result('s1', `${ALICE}/phone`)]);
    });
  });

  describe('roster versioning (§2.6)', () => {
    beforeEach(async () => {
      await phone.receive(set('s1', x('item', { jid: BOB })));
      await phone.receive(set('s2', x('item', { jid: 'carol@example.test' })));
      take(phone);
    });

    it('answers an empty result when the client has the current version', async () => {
      await phone.receive(get('g1', String(NOW + 1)));
      expect(take(phone)).toEqual([result('g1', `${ALICE}/phone`)]);
      expect(phone.rosterRequested).toBe(true);
      // Later changes arrive as pushes carrying the new version.
      await phone.receive(set('s3', x('item', { jid: 'dave@example.test' })));
      expect(take(phone)).toEqual([
        push(`${ALICE}/phone`, NOW + 2, x('item', { jid: 'dave@example.test', subscription: 'none' })),
        result('s3', `${ALICE}/phone`),
      ]);
    });

    it.each(['', String(NOW), 'garbage'])('returns the full roster for the stale version "%s"', async (ver) => {
      await phone.receive(get('g1', ver));
      expect(take(phone)).toEqual([
        result('g1', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: String(NOW + 1) },
          x('item', { jid: BOB, subscription: 'none' }),
          x('item', { jid: 'carol@example.test', subscription: 'none' }))),
      ]);
    });
  });

  describe('roster set errors (§2.3.3)', () => {
    const cases: [string, Element, string, string, string][] = [
      ['two items', set('e', x('item', { jid: BOB }), x('item', { jid: 'carol@example.test' })), 'modify', 'bad-request', 'A roster set carries exactly one item'],
      ['no item', set('e'), 'modify', 'bad-request', 'A roster set carries exactly one item'],
      ['another element', set('e', x('thing', { jid: BOB })), 'modify', 'bad-request', 'A roster set carries one <item/>'],
      ['no jid', set('e', x('item', { name: 'Bob' })), 'modify', 'bad-request', 'The item has no jid attribute'],
      ['an invalid jid', set('e', x('item', { jid: 'a@b@c' })), 'modify', 'jid-malformed', 'The item jid must be a valid bare JID'],
      ['a full jid', set('e', x('item', { jid: `${BOB}/laptop` })), 'modify', 'jid-malformed', 'The item jid must be a valid bare JID'],
      ['the own jid', set('e', x('item', { jid: ALICE })), 'cancel', 'not-allowed', 'The account itself cannot be a roster item'],
      ['an empty group', set('e', x('item', { jid: BOB }, x('group'))), 'modify', 'not-acceptable', 'A group name cannot be empty'],
      ['duplicate groups', set('e', x('item', { jid: BOB }, x('group', null, 'Friends'), x('group', null, 'Friends'))), 'modify', 'bad-request', 'The group "Friends" is listed twice'],
      ['a name that is too long', set('e', x('item', { jid: BOB, name: 'x'.repeat(11) })), 'modify', 'not-acceptable', 'The name is longer than 10 characters'],
      ['a group that is too long', set('e', x('item', { jid: BOB }, x('group', null, 'g'.repeat(11)))), 'modify', 'not-acceptable', 'A group name is longer than 10 characters'],
    ];

    it.each(cases)('refuses %s', async (_what, stanza, type, condition, text) => {
      await host.close();
      host = await createTestHost({ modules: [roster], options: { roster: { maxNameLength: 10, maxGroupLength: 10 } } });
      phone = await host.connect(`${ALICE}/phone`);
      await phone.receive(get('g'));
      take(phone);
      await phone.receive(stanza);
      expect(take(phone)).toEqual([error('e', `${ALICE}/phone`, type, condition, text)]);
      await phone.receive(get('g2'));
      expect(take(phone)).toEqual([result('g2', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: '0' }))]);
    });

    it('refuses a new item on a full roster, but still updates existing ones', async () => {
      await host.close();
      host = await createTestHost({ modules: [roster], options: { roster: { maxItems: 2 } } });
      phone = await host.connect(`${ALICE}/phone`);
      await phone.receive(set('s1', x('item', { jid: BOB })));
      await phone.receive(set('s2', x('item', { jid: 'carol@example.test' })));
      await phone.receive(set('s3', x('item', { jid: 'dave@example.test' })));
      await phone.receive(set('s4', x('item', { jid: BOB, name: 'Bob' })));
      expect(take(phone)).toEqual([
        result('s1', `${ALICE}/phone`),
        result('s2', `${ALICE}/phone`),
        error('s3', `${ALICE}/phone`, 'cancel', 'not-allowed', 'The roster is full (at most 2 items)'),
        result('s4', `${ALICE}/phone`),
      ]);
    });
  });

  describe('the roster service', () => {
    it('reads items and subscriptions', async () => {
      await phone.receive(set('s1', x('item', { jid: BOB, name: 'Bob' }, x('group', null, 'Friends'))));
      const svc = getService();
      expect(await svc.get(ALICE, BOB)).toEqual({ jid: BOB, name: 'Bob', subscription: 'none', ask: false, approved: false, groups: ['Friends'] });
      expect(await svc.get(ALICE, 'carol@example.test')).toBeUndefined();
      expect(await svc.subscription(ALICE, BOB)).toBe('none');
      expect(await svc.subscription(ALICE, 'carol@example.test')).toBe('none');
      expect(await svc.items(ALICE)).toEqual([{ jid: BOB, name: 'Bob', subscription: 'none', ask: false, approved: false, groups: ['Friends'] }]);
      expect(await svc.version(ALICE)).toBe(String(NOW));
      expect(await svc.items(BOB)).toEqual([]);
    });

    it('pushes subscription changes, and keeps a pending request out of the roster', async () => {
      await phone.receive(get('g1'));
      take(phone);
      const svc = getService();
      // A request from carol alone is not a roster item (RFC 6121 §A.1): no push, no version change.
      await svc.modify(ALICE, 'carol@example.test', () => ({ pendingIn: '<presence type="subscribe"/>' }));
      expect(take(phone)).toEqual([]);
      expect(await svc.items(ALICE)).toEqual([]);
      expect(await svc.version(ALICE)).toBe('0');
      expect((await svc.pendingRequests(ALICE)).map((r) => [r.jid, r.pendingIn, r.inRoster])).toEqual([
        ['carol@example.test', '<presence type="subscribe"/>', false],
      ]);
      // Approving it makes carol an item.
      const { before, after } = await svc.modify(ALICE, 'carol@example.test', () => ({ subscription: 'from', pendingIn: null }));
      expect(before.inRoster).toBe(false);
      expect(after).toEqual({ jid: 'carol@example.test', subscription: 'from', ask: false, approved: false, groups: [], inRoster: true });
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW, x('item', { jid: 'carol@example.test', subscription: 'from' }))]);
      // A change of nothing visible is not pushed.
      await svc.modify(ALICE, 'carol@example.test', () => undefined);
      expect(take(phone)).toEqual([]);
      await svc.modify(ALICE, BOB, () => ({ ask: true }));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW + 1, x('item', { jid: BOB, subscription: 'none', ask: 'subscribe' }))]);
      await svc.modify(ALICE, 'dave@example.test', () => ({ approved: true }));
      expect(take(phone)).toEqual([push(`${ALICE}/phone`, NOW + 2, x('item', { jid: 'dave@example.test', subscription: 'none', approved: 'true' }))]);
    });

    it('forgets a pending request that is withdrawn', async () => {
      const svc = getService();
      await svc.modify(ALICE, BOB, () => ({ pendingIn: '<presence/>' }));
      await svc.modify(ALICE, BOB, () => ({ pendingIn: null }));
      expect(await svc.relation(ALICE, BOB)).toEqual({ jid: BOB, subscription: 'none', ask: false, approved: false, groups: [], inRoster: false });
      expect(await svc.pendingRequests(ALICE)).toEqual([]);
    });

    it('serialises concurrent changes to one roster', async () => {
      const svc = getService();
      await Promise.all([
        svc.modify(ALICE, BOB, (cur) => ({ subscription: cur.subscription === 'none' ? 'to' : 'both' })),
        svc.modify(ALICE, BOB, (cur) => ({ subscription: cur.subscription === 'none' ? 'from' : 'both' })),
      ]);
      expect(await svc.subscription(ALICE, BOB)).toBe('both');
    });
  });

  describe('persistence and lifecycle', () => {
    it('keeps the roster across unload and load', async () => {
      await phone.receive(set('s1', x('item', { jid: BOB, name: 'Bob' })));
      await host.core.modules.unload('roster');
      await phone.receive(get('g1'));
      expect(take(phone).at(-1)).toEqual(
        x('iq', { type: 'error', id: 'g1', from: 'example.test', to: `${ALICE}/phone` },
          x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS }))),
      );
      await host.core.modules.load(roster);
      await phone.receive(get('g2'));
      expect(take(phone)).toEqual([
        result('g2', `${ALICE}/phone`, x('query', { xmlns: NS_ROSTER, ver: String(NOW) }, x('item', { jid: BOB, name: 'Bob', subscription: 'none' }))),
      ]);
    });

    it("deletes an account's roster and tells its contacts", async () => {
      const bob = await host.connect(`${BOB}/laptop`);
      bob.presence = x('presence');
      await getService().modify(ALICE, BOB, () => ({ subscription: 'to' }));
      await getService().modify(ALICE, 'carol@example.test', () => ({ pendingIn: '<presence/>' }));
      await host.core.deleteUser(ALICE);
      expect(bob.take()).toEqual([x('presence', { type: 'unsubscribe', from: ALICE, to: BOB })]);
      const db = host.core.db;
      expect(db.prepare('SELECT COUNT(*) FROM roster_item WHERE user_jid = ?').pluck().get(ALICE)).toBe(0);
      expect(db.prepare('SELECT COUNT(*) FROM roster_version WHERE user_jid = ?').pluck().get(ALICE)).toBe(0);
    });
  });
});
