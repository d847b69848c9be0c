import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import { defineModule, Jid, x, NS_STANZAS, type Element, type HookMap } from '../../src';
import blocking, { NS_BLOCKING, NS_BLOCKING_ERRORS, isBlockedBy, itemMatches } from '../../modules/blocking';
import vcard, { NS_VCARD } from '../../modules/vcard';
import type { RosterItem, RosterService } from '../../modules/roster';

const ALICE = 'alice@example.test/phone';
const BOB = 'bob@example.test/pc';

function stanzaError(condition: string, type: string, text?: string, app?: Element): Element {
  return x('error', { type }, x(condition, { xmlns: NS_STANZAS }),
    text === undefined ? undefined : x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text), app);
}
const BLOCKED_ERROR = stanzaError('not-acceptable', 'cancel', undefined, x('blocked', { xmlns: NS_BLOCKING_ERRORS }));

const items = (...jids: string[]) => jids.map((jid) => x('item', { jid }));
const blockIq = (id: string, ...jids: string[]) => x('iq', { type: 'set', id }, x('block', { xmlns: NS_BLOCKING }, items(...jids)));
const unblockIq = (id: string, ...jids: string[]) => x('iq', { type: 'set', id }, x('unblock', { xmlns: NS_BLOCKING }, items(...jids)));
const listIq = (id: string) => x('iq', { type: 'get', id }, x('blocklist', { xmlns: NS_BLOCKING }));
const chat = (to: string, body: string) => x('message', { type: 'chat', to }, x('body', null, body));

describe('blocking (XEP-0191)', () => {
  let host: TestHost;
  let changes: HookMap['blocklist/changed'][];
  const spy = defineModule({
    name: 'spy',
    setup(api) {
      api.hook('blocklist/changed', (e) => {
        changes.push(e);
      });
    },
  });

  beforeEach(async () => {
    changes = [];
    host = await createTestHost({ modules: [blocking, vcard, spy] });
  });
  afterEach(() => host.close());

  async function blocklistOf(session: FakeSession): Promise<string[]> {
    await session.receive(listIq('list'));
    const reply = session.take().find((s) => s.attrs.id === 'list')!;
    return reply.getChild('blocklist', NS_BLOCKING)!.getChildren('item').map((i) => i.attrs.jid!);
  }

  describe('the blocklist', () => {
    it('is empty at first', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(listIq('b1'));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'b1', to: ALICE }, x('blocklist', { xmlns: NS_BLOCKING }))]);
    });

    it('lists blocked JIDs, normalised and without duplicates', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'Romeo@Montague.NET', 'iago@shakespeare.lit', 'romeo@montague.net', 'montague.net/chat'));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'b1', to: ALICE })]);
      await alice.receive(listIq('l1'));
      expect(alice.take()).toEqual([
        x('iq', { type: 'result', id: 'l1', to: ALICE }, x('blocklist', { xmlns: NS_BLOCKING },
          items('iago@shakespeare.lit', 'montague.net/chat', 'romeo@montague.net'))),
      ]);
    });

    it('pushes a block, then an unblock, to every resource that retrieved the blocklist', async () => {
      const phone = await host.connect(ALICE);
      const tablet = await host.connect('alice@example.test/tablet');
      const laptop = await host.connect('alice@example.test/laptop');
      await phone.receive(listIq('l1'));
      await tablet.receive(listIq('l2'));
      phone.take();
      tablet.take();

      await laptop.receive(blockIq('b1', 'romeo@montague.net'));
      expect(laptop.take()).toEqual([x('iq', { type: 'result', id: 'b1', to: 'alice@example.test/laptop' })]);
      for (const s of [phone, tablet]) {
        const pushes = s.take();
        expect(pushes).toEqual([
          x('iq', { type: 'set', id: pushes[0]!.attrs.id!, to: s.jid.toString() }, x('block', { xmlns: NS_BLOCKING }, items('romeo@montague.net'))),
        ]);
        expect(pushes[0]!.attrs.id).toMatch(/^blocklist-push-\d+$/);
      }

      await phone.receive(unblockIq('u1', 'Romeo@montague.net'));
      const fromPhone = phone.take();
      expect(fromPhone).toEqual([
        x('iq', { type: 'set', id: fromPhone[0]!.attrs.id!, to: ALICE }, x('unblock', { xmlns: NS_BLOCKING }, items('romeo@montague.net'))),
        x('iq', { type: 'result', id: 'u1', to: ALICE }),
      ]);
      expect(tablet.take()).toHaveLength(1);
      expect(laptop.take()).toEqual([]);
    });

    it('unblocks everyone with an empty <unblock/>, pushed as such', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'romeo@montague.net', 'iago@shakespeare.lit'));
      await alice.receive(listIq('l1'));
      alice.take();
      await alice.receive(unblockIq('u1'));
      const sent = alice.take();
      expect(sent).toEqual([
        x('iq', { type: 'set', id: sent[0]!.attrs.id!, to: ALICE }, x('unblock', { xmlns: NS_BLOCKING })),
        x('iq', { type: 'result', id: 'u1', to: ALICE }),
      ]);
      expect(await blocklistOf(alice)).toEqual([]);
    });

    it('ignores unblocking a JID that was not blocked', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'romeo@montague.net'));
      await alice.receive(unblockIq('u1', 'iago@shakespeare.lit'));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'b1', to: ALICE }), x('iq', { type: 'result', id: 'u1', to: ALICE })]);
      expect(await blocklistOf(alice)).toEqual(['romeo@montague.net']);
      // Only the block fired blocklist/changed: the unblock changed nothing.
      expect(changes.map((c) => [c.blocked.map(String), c.unblocked.map(String)])).toEqual([[['romeo@montague.net'], []]]);
    });

    it('refuses a block without items with bad-request', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1'));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'b1', from: 'example.test', to: ALICE }, stanzaError('bad-request', 'modify', 'A block command needs at least one item')),
      ]);
    });

    it('refuses a malformed JID with jid-malformed and blocks none of the items', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'romeo@montague.net', 'bad@@jid'));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'b1', from: 'example.test', to: ALICE }, stanzaError('jid-malformed', 'modify', '"bad@@jid" is not a valid JID')),
      ]);
      await alice.receive(unblockIq('u1', 'a@b/'));
      expect(alice.take()[0]!.getChild('error')!.getChild('jid-malformed', NS_STANZAS)).toBeDefined();
      expect(await blocklistOf(alice)).toEqual([]);
    });

    it('refuses an item without a jid, or another element, with bad-request', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(x('iq', { type: 'set', id: 'b1' }, x('block', { xmlns: NS_BLOCKING }, x('item'))));
      // Not an "unblock all": an unexpected child must not clear the list.
      await alice.receive(x('iq', { type: 'set', id: 'u1' }, x('unblock', { xmlns: NS_BLOCKING }, x('jid', null, 'romeo@montague.net'))));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'b1', from: 'example.test', to: ALICE }, stanzaError('bad-request', 'modify', 'An item needs a jid attribute')),
        x('iq', { type: 'error', id: 'u1', from: 'example.test', to: ALICE }, stanzaError('bad-request', 'modify', 'Unexpected <jid/> in <unblock/>')),
      ]);
    });

    it('limits the size of a blocklist with policy-violation', async () => {
      await host.close();
      host = await createTestHost({ modules: [blocking], options: { blocking: { maxItems: 2 } } });
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'a@x.test', 'b@x.test'));
      await alice.receive(blockIq('b2', 'a@x.test'));
      await alice.receive(blockIq('b3', 'a@x.test', 'c@x.test'));
      expect(alice.take()).toEqual([
        x('iq', { type: 'result', id: 'b1', to: ALICE }),
        x('iq', { type: 'result', id: 'b2', to: ALICE }),
        x('iq', { type: 'error', id: 'b3', from: 'example.test', to: ALICE }, stanzaError('policy-violation', 'modify', 'A blocklist holds at most 2 items')),
      ]);
      expect(await blocklistOf(alice)).toEqual(['a@x.test', 'b@x.test']);
    });

    it('is only for one\'s own account', async () => {
      await host.connect(ALICE);
      const bob = await host.connect(BOB);
      await bob.receive(x('iq', { type: 'get', id: 'l1', to: 'alice@example.test' }, x('blocklist', { xmlns: NS_BLOCKING })));
      await bob.receive(x('iq', { type: 'set', id: 'b1', to: 'alice@example.test' }, x('block', { xmlns: NS_BLOCKING }, items('bob@example.test'))));
      expect(bob.take()).toEqual([
        x('iq', { type: 'error', id: 'l1', from: 'alice@example.test', to: BOB }, stanzaError('service-unavailable', 'cancel')),
        x('iq', { type: 'error', id: 'b1', from: 'alice@example.test', to: BOB }, stanzaError('service-unavailable', 'cancel')),
      ]);
    });

    it('fires blocklist/changed with what actually changed', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(blockIq('b1', 'romeo@montague.net', 'iago@shakespeare.lit'));
      await alice.receive(blockIq('b2', 'romeo@montague.net'));
      await alice.receive(unblockIq('u1', 'romeo@montague.net'));
      await alice.receive(unblockIq('u2'));
      const view = (e: HookMap['blocklist/changed']) => ({
        jid: e.jid.toString(), blocked: e.blocked.map(String), unblocked: e.unblocked.map(String),
      });
      expect(changes.map(view)).toEqual([
        { jid: 'alice@example.test', blocked: ['romeo@montague.net', 'iago@shakespeare.lit'], unblocked: [] },
        { jid: 'alice@example.test', blocked: [], unblocked: ['romeo@montague.net'] },
        { jid: 'alice@example.test', blocked: [], unblocked: ['iago@shakespeare.lit'] },
      ]);
    });
  });

  describe('stanzas from a blocked contact', () => {
    let alice: FakeSession;
    let bob: FakeSession;
    beforeEach(async () => {
      alice = await host.connect(ALICE);
      alice.presence = x('presence');
      bob = await host.connect(BOB);
      bob.presence = x('presence');
      await alice.receive(blockIq('b1', 'bob@example.test'));
      alice.take();
    });

    it('bounces chat and normal messages with service-unavailable', async () => {
      await bob.receive(chat(ALICE, 'hi'));
      await bob.receive(x('message', { to: 'alice@example.test', id: 'm2' }, x('body', null, 'hello?')));
      expect(alice.take()).toEqual([]);
      expect(bob.take()).toEqual([
        x('message', { type: 'error', from: ALICE, to: BOB }, x('body', null, 'hi'), stanzaError('service-unavailable', 'cancel')),
        x('message', { type: 'error', id: 'm2', from: 'alice@example.test', to: BOB }, x('body', null, 'hello?'), stanzaError('service-unavailable', 'cancel')),
      ]);
    });

    it('drops headline and error messages and presence without an answer', async () => {
      await bob.receive(x('message', { type: 'headline', to: ALICE }, x('body', null, 'news')));
      await bob.receive(x('message', { type: 'error', to: ALICE }, stanzaError('item-not-found', 'cancel')));
      await bob.receive(x('presence', { to: ALICE }));
      await bob.receive(x('presence', { to: 'alice@example.test', type: 'subscribe' }));
      expect(alice.take()).toEqual([]);
      expect(bob.take()).toEqual([]);
    });

    it('answers IQ get and set with service-unavailable', async () => {
      await bob.receive(x('iq', { type: 'get', id: 'q1', to: ALICE }, x('query', { xmlns: 'jabber:iq:version' })));
      await bob.receive(x('iq', { type: 'get', id: 'q2', to: 'alice@example.test' }, x('vCard', { xmlns: NS_VCARD })));
      expect(alice.take()).toEqual([]);
      expect(bob.take()).toEqual([
        x('iq', { type: 'error', id: 'q1', from: ALICE, to: BOB }, stanzaError('service-unavailable', 'cancel')),
        x('iq', { type: 'error', id: 'q2', from: 'alice@example.test', to: BOB }, stanzaError('service-unavailable', 'cancel')),
      ]);
    });

    it('delivers again after an unblock', async () => {
      await alice.receive(unblockIq('u1', 'bob@example.test'));
      alice.take();
      await bob.receive(chat(ALICE, 'hi'));
      const iq = x('iq', { type: 'get', id: 'q1', to: ALICE }, x('query', { xmlns: 'jabber:iq:version' }));
      await bob.receive(iq);
      expect(alice.take()).toEqual([
        x('message', { type: 'chat', to: ALICE, from: BOB }, x('body', null, 'hi')),
        x('iq', { type: 'get', id: 'q1', to: ALICE, from: BOB }, x('query', { xmlns: 'jabber:iq:version' })),
      ]);
      expect(bob.take()).toEqual([]);
    });

    it('does not stop other users', async () => {
      const carol = await host.connect('carol@example.test/web');
      await carol.receive(chat(ALICE, 'hi'));
      expect(alice.take()).toEqual([x('message', { type: 'chat', to: ALICE, from: 'carol@example.test/web' }, x('body', null, 'hi'))]);
    });
  });

  describe('stanzas to a blocked contact', () => {
    let alice: FakeSession;
    let bob: FakeSession;
    beforeEach(async () => {
      alice = await host.connect(ALICE);
      alice.presence = x('presence');
      bob = await host.connect(BOB);
      bob.presence = x('presence');
      await alice.receive(blockIq('b1', 'bob@example.test'));
      alice.take();
    });

    it('refuses messages, IQs and directed presence with not-acceptable and <blocked/>', async () => {
      await alice.receive(x('message', { type: 'chat', to: 'bob@example.test', id: 'm1' }, x('body', null, 'Can you hear me now?')));
      await alice.receive(x('iq', { type: 'get', id: 'q1', to: BOB }, x('query', { xmlns: 'jabber:iq:version' })));
      await alice.receive(x('presence', { to: BOB }));
      expect(bob.take()).toEqual([]);
      expect(alice.take()).toEqual([
        x('message', { type: 'error', id: 'm1', from: 'bob@example.test', to: ALICE }, x('body', null, 'Can you hear me now?'), BLOCKED_ERROR),
        x('iq', { type: 'error', id: 'q1', from: BOB, to: ALICE }, BLOCKED_ERROR),
        x('presence', { type: 'error', from: BOB, to: ALICE }, BLOCKED_ERROR),
      ]);
    });

    it('drops errors and IQ results silently', async () => {
      await alice.receive(x('message', { type: 'error', to: BOB }, stanzaError('item-not-found', 'cancel')));
      await alice.receive(x('iq', { type: 'result', id: 'q9', to: BOB }));
      expect(bob.take()).toEqual([]);
      expect(alice.take()).toEqual([]);
    });

    it('still lets a subscription be refused or cancelled', async () => {
      await alice.receive(x('presence', { type: 'unsubscribed', to: 'bob@example.test' }));
      expect(alice.take()).toEqual([]);
      expect(bob.take()).toEqual([x('presence', { type: 'unsubscribed', to: 'bob@example.test', from: ALICE })]);
    });

    it('drops what the server routes on the user\'s behalf, except unavailable presence', async () => {
      await host.core.router.route(x('presence', { from: ALICE, to: 'bob@example.test' }, x('status', null, 'here')));
      await host.core.router.route(x('presence', { from: 'alice@example.test', to: 'bob@example.test', type: 'probe' }));
      await host.core.router.route(x('message', { from: ALICE, to: BOB, type: 'chat' }, x('body', null, 'routed')));
      expect(bob.take()).toEqual([]);
      await host.core.router.route(x('presence', { from: ALICE, to: 'bob@example.test', type: 'unavailable' }));
      expect(bob.take()).toEqual([x('presence', { from: ALICE, to: 'bob@example.test', type: 'unavailable' })]);
      expect(alice.take()).toEqual([]);
    });

    it('never blocks the user\'s own account or the server', async () => {
      await alice.receive(blockIq('b2', 'alice@example.test', 'example.test'));
      await alice.receive(chat('alice@example.test/phone', 'note to self'));
      await alice.receive(x('iq', { type: 'get', id: 'p1', to: 'example.test' }, x('ping', { xmlns: 'urn:xmpp:ping' })));
      expect(alice.take()).toEqual([
        x('iq', { type: 'result', id: 'b2', to: ALICE }),
        x('message', { type: 'chat', to: ALICE, from: ALICE }, x('body', null, 'note to self')),
        // No ping module here: the router's answer, not a <blocked/> error.
        x('iq', { type: 'error', id: 'p1', from: 'example.test', to: ALICE }, stanzaError('service-unavailable', 'cancel')),
      ]);
    });
  });

  describe('JID matching (XEP-0191 §6)', () => {
    let alice: FakeSession;
    let remote: Element[];
    beforeEach(async () => {
      alice = await host.connect(ALICE);
      alice.presence = x('presence');
      remote = [];
      for (const d of ['evil.test', 'sub.evil.test', 'notevil.test', 'other.test']) host.core.router.registerDomain(d, (s) => void remote.push(s));
    });

    /** A chat message from a remote address to alice; true when it was delivered. */
    async function delivered(from: string): Promise<boolean> {
      await host.core.router.route(x('message', { type: 'chat', from, to: ALICE, id: from }, x('body', null, 'hi')));
      const got = alice.take();
      if (got.length === 0) {
        expect(remote.pop()).toEqual(x('message', { type: 'error', id: from, from: ALICE, to: from }, x('body', null, 'hi'), stanzaError('service-unavailable', 'cancel')));
        return false;
      }
      return true;
    }

    it('a domain item blocks the domain, its users, resources and subdomains', async () => {
      await alice.receive(blockIq('b1', 'evil.test'));
      alice.take();
      expect(await delivered('evil.test')).toBe(false);
      expect(await delivered('evil.test/bot')).toBe(false);
      expect(await delivered('spam@evil.test/x')).toBe(false);
      expect(await delivered('sub.evil.test')).toBe(false);
      expect(await delivered('spam@sub.evil.test/x')).toBe(false);
      expect(await delivered('friend@notevil.test/x')).toBe(true);
      expect(await delivered('friend@other.test/x')).toBe(true);
    });

    it('a bare JID item blocks every resource of that account only', async () => {
      await alice.receive(blockIq('b1', 'spam@evil.test'));
      alice.take();
      expect(await delivered('spam@evil.test')).toBe(false);
      expect(await delivered('spam@evil.test/a')).toBe(false);
      expect(await delivered('ham@evil.test/a')).toBe(true);
      expect(await delivered('evil.test')).toBe(true);
    });

    it('a full JID item blocks only that resource', async () => {
      await alice.receive(blockIq('b1', 'spam@evil.test/bot'));
      alice.take();
      expect(await delivered('spam@evil.test/bot')).toBe(false);
      expect(await delivered('spam@evil.test/human')).toBe(true);
      expect(await delivered('spam@evil.test')).toBe(true);
    });

    it('a domain/resource item blocks only that address', async () => {
      await alice.receive(blockIq('b1', 'evil.test/bot'));
      alice.take();
      expect(await delivered('evil.test/bot')).toBe(false);
      expect(await delivered('evil.test')).toBe(true);
      expect(await delivered('spam@evil.test/bot')).toBe(true);
    });

    it('the set lookup and the item predicate agree', () => {
      const itemsList = ['a@d.test', 'b@d.test/r', 'd.test/r', 'e.test', '10.0.0.1', '[::1]'];
      const others = ['a@d.test', 'a@d.test/x', 'b@d.test', 'b@d.test/r', 'd.test/r', 'd.test', 'x@e.test/y', 'e.test',
        'f.e.test', 'x@g.f.e.test', 'ee.test', 'x@10.0.0.1', '0.0.1', '[::1]', 'c@d.test/r'];
      for (const item of itemsList) {
        for (const other of others) {
          const o = Jid.parse(other);
          expect([item, other, isBlockedBy(new Set([item]), o)]).toEqual([item, other, itemMatches(Jid.parse(item), o)]);
        }
      }
      expect(itemMatches(Jid.parse('e.test'), Jid.parse('x@g.f.e.test'))).toBe(true);
      expect(itemMatches(Jid.parse('0.0.1'), Jid.parse('10.0.0.1'))).toBe(false);
    });
  });

  describe('presence on block and unblock (§3.3, §3.4)', () => {
    let alice: FakeSession;
    let tablet: FakeSession;
    let bob: FakeSession;
    let carol: FakeSession;
    let remote: Element[];
    const away = x('presence', { from: ALICE }, x('show', null, 'away'));

    beforeEach(async () => {
      // A stand-in for the roster module: alice's contacts and their subscription states.
      // Only the fields the blocking module reads.
      const items: Pick<RosterItem, 'jid' | 'subscription'>[] = [
        { jid: 'bob@example.test', subscription: 'from' },
        { jid: 'carol@example.test', subscription: 'to' },
        { jid: 'dave@other.test', subscription: 'both' },
      ];
      const service = { items: async (user: string) => (user === 'alice@example.test' ? items : []) } as unknown as RosterService;
      await host.core.modules.load(defineModule({ name: 'fake-roster', setup(api) { api.provide('roster', service); } }));
      remote = [];
      host.core.router.registerDomain('other.test', (st) => void remote.push(st));
      alice = await host.connect(ALICE);
      alice.presence = away;
      tablet = await host.connect('alice@example.test/tablet');
      tablet.presence = x('presence', { from: 'alice@example.test/tablet' });
      await host.connect('alice@example.test/idle'); // no presence: nothing is sent for it
      bob = await host.connect(BOB);
      bob.presence = x('presence');
      carol = await host.connect('carol@example.test/web');
      carol.presence = x('presence');
    });

    it('sends unavailable presence from each available resource to a subscribed contact', async () => {
      await alice.receive(blockIq('b1', 'bob@example.test', 'carol@example.test'));
      expect(bob.take()).toEqual([
        x('presence', { type: 'unavailable', from: ALICE, to: 'bob@example.test' }),
        x('presence', { type: 'unavailable', from: 'alice@example.test/tablet', to: 'bob@example.test' }),
      ]);
      // carol is not subscribed to alice's presence ('to' only): she gets nothing.
      expect(carol.take()).toEqual([]);
      // Blocking bob again changes nothing and sends nothing.
      await alice.receive(blockIq('b2', 'bob@example.test'));
      expect(bob.take()).toEqual([]);
    });

    it('finds the contacts a domain item covers, and sends to a blocked full JID', async () => {
      await alice.receive(blockIq('b1', 'other.test', 'bob@example.test/pc'));
      expect(remote).toEqual([
        x('presence', { type: 'unavailable', from: ALICE, to: 'dave@other.test' }),
        x('presence', { type: 'unavailable', from: 'alice@example.test/tablet', to: 'dave@other.test' }),
      ]);
      expect(bob.take()).toEqual([
        x('presence', { type: 'unavailable', from: ALICE, to: BOB }),
        x('presence', { type: 'unavailable', from: 'alice@example.test/tablet', to: BOB }),
      ]);
    });

    it('sends the current presence on unblock, unless another item still blocks the contact', async () => {
      await alice.receive(blockIq('b1', 'bob@example.test', 'dave@other.test', 'other.test'));
      bob.take();
      remote.length = 0;
      await alice.receive(unblockIq('u1', 'bob@example.test', 'dave@other.test'));
      expect(bob.take()).toEqual([
        away.withAttrs({ from: ALICE, to: 'bob@example.test' }),
        x('presence', { from: 'alice@example.test/tablet', to: 'bob@example.test' }),
      ]);
      expect(remote).toEqual([]);
      await alice.receive(unblockIq('u2'));
      expect(remote).toEqual([
        away.withAttrs({ from: ALICE, to: 'dave@other.test' }),
        x('presence', { from: 'alice@example.test/tablet', to: 'dave@other.test' }),
      ]);
      expect(tablet.take().filter((st) => st.name === 'presence')).toEqual([]);
    });
  });

  it('offers the blocking service to other modules', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(blockIq('b1', 'evil.test'));
    let service: import('../../modules/blocking').BlockingService | undefined;
    await host.core.modules.load(defineModule({ name: 'consumer', setup(api) { service = api.service('blocking'); } }));
    expect(await service!.isBlocked('alice@example.test', Jid.parse('x@sub.evil.test/r'))).toBe(true);
    expect(await service!.isBlocked('alice@example.test', Jid.parse('x@good.test'))).toBe(false);
    expect(await service!.isBlocked('bob@example.test', Jid.parse('x@evil.test'))).toBe(false);
  });

  it('keeps blocklists across unload and load, and stops enforcing while unloaded', async () => {
    const alice = await host.connect(ALICE);
    const bob = await host.connect(BOB);
    await alice.receive(blockIq('b1', 'bob@example.test'));
    await host.core.modules.unload('blocking');
    alice.take();
    await alice.receive(listIq('l1'));
    expect(alice.take()).toEqual([
      x('iq', { type: 'error', id: 'l1', from: 'example.test', to: ALICE }, stanzaError('service-unavailable', 'cancel')),
    ]);
    await bob.receive(chat(ALICE, 'unloaded'));
    expect(alice.take()).toHaveLength(1);
    await host.core.modules.load(blocking);
    await bob.receive(chat(ALICE, 'loaded'));
    expect(alice.take()).toEqual([]);
    expect(bob.take()).toHaveLength(1);
    expect(await blocklistOf(alice)).toEqual(['bob@example.test']);
  });

  it('enforces correctly when the cache holds fewer lists than there are users', async () => {
    await host.close();
    host = await createTestHost({ modules: [blocking], options: { blocking: { cacheSize: 1 } } });
    const alice = await host.connect(ALICE);
    const bob = await host.connect(BOB);
    const carol = await host.connect('carol@example.test/web');
    await alice.receive(blockIq('b1', 'bob@example.test'));
    await carol.receive(blockIq('b2', 'bob@example.test'));
    alice.take();
    carol.take();
    for (let i = 0; i < 3; i++) {
      await bob.receive(chat(ALICE, 'a'));
      await bob.receive(chat('carol@example.test/web', 'c'));
      await carol.receive(chat(ALICE, 'from carol'));
    }
    expect(alice.take()).toHaveLength(3);
    expect(carol.take()).toEqual([]);
    expect(bob.take().map((s) => s.attrs.type)).toEqual(['error', 'error', 'error', 'error', 'error', 'error']);
  });

  it('deletes the blocklist with the account', async () => {
    const alice = await host.connect(ALICE);
    const bob = await host.connect(BOB);
    await alice.receive(blockIq('b1', 'bob@example.test'));
    await bob.receive(blockIq('b1', 'carol@example.test'));
    await host.core.deleteUser('alice@example.test');
    expect(host.core.db.prepare('SELECT account FROM blocking_item').pluck().all()).toEqual(['bob@example.test']);
    const again = await host.connect(ALICE);
    expect(await blocklistOf(again)).toEqual([]);
    await bob.receive(chat(ALICE, 'hi again'));
    expect(again.take()).toEqual([x('message', { type: 'chat', to: ALICE, from: BOB }, x('body', null, 'hi again'))]);
  });
});
