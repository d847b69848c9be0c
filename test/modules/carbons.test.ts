import { x, type Element } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { Jid } from '../../src/jid';
import type { XmppModule } from '../../src/module';
import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import carbons, { NS_CARBONS, NS_FORWARD, NS_HINTS, NS_MUC_USER, eligible } from '../../modules/carbons';
import mam, { NS_MAM, NS_SID } from '../../modules/mam';
import offline from '../../modules/offline';
import disco, { NS_DISCO_INFO } from '../../modules/disco';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const ROOM = 'room@conference.example.test';
const NS_CLIENT = 'jabber:client';
const CHATSTATES = 'http://jabber.org/protocol/chatstates';

const chat = (to: string, body: string, id?: string, ...extra: Element[]) =>
  x('message', { to, type: 'chat', id }, x('body', null, body), ...extra);

/** A carbon copy as XEP-0280 §7/§8 write it: the original (as delivered) inside <forwarded/>. */
const carbon = (direction: 'sent' | 'received', to: string, original: Element, type: string | undefined = original.attrs.type) =>
  x('message', { from: ALICE, to, type },
    x(direction, { xmlns: NS_CARBONS }, x('forwarded', { xmlns: NS_FORWARD }, original.withAttrs({ xmlns: NS_CLIENT }))));

describe('carbons (XEP-0280)', () => {
  let host: TestHost;
  let phone: FakeSession;
  let laptop: FakeSession;
  let tablet: FakeSession;
  let bob: FakeSession;

  async function enable(s: FakeSession): Promise<void> {
    await s.receive(x('iq', { type: 'set', id: 'en' }, x('enable', { xmlns: NS_CARBONS })));
    expect(s.take()).toEqual([x('iq', { type: 'result', id: 'en', to: s.jid.toString() })]);
  }

  async function setup(modules: XmppModule[] = [carbons, offline]): Promise<void> {
    host = await createTestHost({ modules });
    phone = await host.connect(`${ALICE}/phone`);
    laptop = await host.connect(`${ALICE}/laptop`);
    tablet = await host.connect(`${ALICE}/tablet`);
    bob = await host.connect(`${BOB}/desk`);
    await enable(phone);
    await enable(laptop);
    // tablet does not enable carbons.
  }

  afterEach(() => host.close());

  describe('enabling', () => {
    beforeEach(() => setup());

    it('enables and disables per session, and repeating either is no error', async () => {
      await enable(phone); // again
      await phone.receive(x('iq', { type: 'set', id: 'd1' }, x('disable', { xmlns: NS_CARBONS })));
      await phone.receive(x('iq', { type: 'set', id: 'd2', to: ALICE }, x('disable', { xmlns: NS_CARBONS })));
      expect(phone.take()).toEqual([
        x('iq', { type: 'result', id: 'd1', to: `${ALICE}/phone` }),
        x('iq', { type: 'result', id: 'd2', to: `${ALICE}/phone`, from: ALICE }),
      ]);
      // phone no longer gets copies; laptop still does.
      await tablet.receive(chat(`${BOB}/desk`, 'hi'));
      expect(phone.take()).toEqual([]);
      expect(laptop.take()).toHaveLength(1);
    });

    it('refuses to enable or disable carbons of another account with not-allowed', async () => {
      for (const name of ['enable', 'disable']) {
        await phone.receive(x('iq', { type: 'set', id: name, to: BOB }, x(name, { xmlns: NS_CARBONS })));
        expect(phone.take()).toEqual([x('iq', { type: 'error', id: name, from: BOB, to: `${ALICE}/phone` },
          x('error', { type: 'cancel' }, x('not-allowed', { xmlns: NS_STANZAS }),
            x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, "Carbons are enabled on one's own account")))]);
      }
      await bob.receive(chat(`${ALICE}/tablet`, 'still off for bob'));
      expect(bob.take()).toEqual([]);
    });
  });

  describe('copies', () => {
    beforeEach(() => setup());

    it('copies a sent message to the other enabled resources, not to the sender', async () => {
      const msg = chat(`${BOB}/desk`, 'Neither, fair saint', 's1', x('thread', null, '0e3141cd'));
      await phone.receive(msg);
      const delivered = msg.withAttrs({ from: `${ALICE}/phone` });
      expect(bob.take()).toEqual([delivered]);
      expect(laptop.take()).toEqual([carbon('sent', `${ALICE}/laptop`, delivered)]);
      expect(phone.take()).toEqual([]);
      expect(tablet.take()).toEqual([]);
    });

    it('copies what a resource without carbons sends to those that enabled them', async () => {
      await tablet.receive(chat(`${BOB}/desk`, 'from the tablet', 't1'));
      const delivered = chat(`${BOB}/desk`, 'from the tablet', 't1').withAttrs({ from: `${ALICE}/tablet` });
      expect(phone.take()).toEqual([carbon('sent', `${ALICE}/phone`, delivered)]);
      expect(laptop.take()).toEqual([carbon('sent', `${ALICE}/laptop`, delivered)]);
    });

    it('copies a received message to the enabled resources that did not get it', async () => {
      await bob.receive(chat(`${ALICE}/phone`, 'What man art thou', 'r1'));
      const delivered = chat(`${ALICE}/phone`, 'What man art thou', 'r1').withAttrs({ from: `${BOB}/desk` });
      expect(phone.take()).toEqual([delivered]);
      expect(laptop.take()).toEqual([carbon('received', `${ALICE}/laptop`, delivered)]);
      expect(tablet.take()).toEqual([]);
    });

    it('does not copy a message to the bare JID to the resources it was delivered to', async () => {
      phone.presence = x('presence');
      laptop.presence = x('presence');
      const idle = await host.connect(`${ALICE}/idle`); // enabled, but no presence: it gets a copy
      await enable(idle);
      const away = await host.connect(`${ALICE}/away`); // enabled, negative priority: a copy too
      await enable(away);
      away.presence = x('presence', null, x('priority', null, '-1'));
      away.priority = -1;
      await bob.receive(chat(ALICE, 'to all of you', 'b1'));
      const delivered = chat(ALICE, 'to all of you', 'b1').withAttrs({ from: `${BOB}/desk` });
      expect(phone.take()).toEqual([delivered]);
      expect(laptop.take()).toEqual([delivered]);
      expect(idle.take()).toEqual([carbon('received', `${ALICE}/idle`, delivered)]);
      expect(away.take()).toEqual([carbon('received', `${ALICE}/away`, delivered)]);
      expect(tablet.take()).toEqual([]);
    });

    it('copies a message the account sends itself as received, not as sent, and not to the sender', async () => {
      const idle = await host.connect(`${ALICE}/idle`);
      await enable(idle);
      await phone.receive(chat(`${ALICE}/laptop`, 'note to self', 'n1'));
      const delivered = chat(`${ALICE}/laptop`, 'note to self', 'n1').withAttrs({ from: `${ALICE}/phone` });
      expect(laptop.take()).toEqual([delivered]);
      expect(idle.take()).toEqual([carbon('received', `${ALICE}/idle`, delivered)]);
      expect(phone.take()).toEqual([]);
    });

    it('makes no copies of a <private/> message, and strips <private/> before delivering it', async () => {
      const priv = () => x('private', { xmlns: NS_CARBONS });
      await phone.receive(chat(`${BOB}/desk`, 'for bob only', 'p1', priv(), x('no-copy', { xmlns: NS_HINTS })));
      // bob is on this server: as the receiving server, it removes <private/> (§9).
      expect(bob.take()).toEqual([chat(`${BOB}/desk`, 'for bob only', 'p1', x('no-copy', { xmlns: NS_HINTS })).withAttrs({ from: `${ALICE}/phone` })]);
      expect(laptop.take()).toEqual([]);
      await bob.receive(chat(`${ALICE}/phone`, 'for the phone only', 'p2', priv()));
      expect(phone.take()).toEqual([chat(`${ALICE}/phone`, 'for the phone only', 'p2').withAttrs({ from: `${BOB}/desk` })]);
      expect(laptop.take()).toEqual([]);
    });

    it('makes no copies of a message with a <no-copy/> hint', async () => {
      await phone.receive(chat(`${BOB}/desk`, 'hint out', 'h1', x('no-copy', { xmlns: NS_HINTS })));
      await bob.receive(chat(`${ALICE}/phone`, 'hint in', 'h2', x('no-copy', { xmlns: NS_HINTS })));
      expect(laptop.take()).toEqual([]);
      expect(phone.take()).toHaveLength(1);
    });

    it('copies chat, normal messages with a body or a chat state, and nothing else', async () => {
      const to = `${ALICE}/phone`;
      const sends: [Element, boolean][] = [
        [x('message', { to, type: 'chat' }, x('composing', { xmlns: CHATSTATES })), true],
        [x('message', { to }, x('body', null, 'normal')), true],
        [x('message', { to }, x('active', { xmlns: CHATSTATES })), true],
        [x('message', { to }, x('received', { xmlns: 'urn:xmpp:receipts', id: 'r' })), true],
        [x('message', { to }, x('subject', null, 'just a subject')), false],
        [x('message', { to, type: 'headline' }, x('body', null, 'headline')), false],
        [x('message', { to, type: 'error' }, x('body', null, 'error')), false],
      ];
      for (const [msg] of sends) await bob.receive(msg);
      expect(laptop.take().map((m) => m.getChild('received', NS_CARBONS)!.getChild('forwarded', NS_FORWARD)!.getChild('message', NS_CLIENT)))
        .toEqual(sends.filter(([, yes]) => yes).map(([m]) => m.withAttrs({ from: `${BOB}/desk`, xmlns: NS_CLIENT })));
      expect(sends.map(([m]) => eligible(m, 'received', Jid.parse(to)))).toEqual(sends.map(([, yes]) => yes));
      // Groupchat: a room's messages to one occupant resource are never copied.
      await host.core.router.route(x('message', { from: `${ROOM}/nick`, to, type: 'groupchat' }, x('body', null, 'room talk')));
      expect(phone.take().at(-1)!.getChildText('body')).toBe('room talk');
      expect(laptop.take()).toEqual([]);
    });

    it('copies MUC private messages when sent, not when received on a full JID; invitations to the bare JID are copied', async () => {
      const mucX = () => x('x', { xmlns: NS_MUC_USER });
      await host.core.router.route(x('message', { from: `${ROOM}/juliet`, to: `${ALICE}/phone`, type: 'chat' }, x('body', null, 'psst'), mucX()));
      expect(phone.take()).toHaveLength(1);
      expect(laptop.take()).toEqual([]);

      await phone.receive(x('message', { to: `${ROOM}/juliet`, type: 'chat', id: 'pm' }, x('body', null, 'psst back'), mucX()));
      expect(laptop.take()).toEqual([carbon('sent', `${ALICE}/laptop`,
        x('message', { to: `${ROOM}/juliet`, type: 'chat', id: 'pm', from: `${ALICE}/phone` }, x('body', null, 'psst back'), mucX()))]);
      phone.take(); // remote-server-not-found: no MUC service in this test

      phone.presence = x('presence', null, x('priority', null, '1'));
      phone.priority = 1;
      const invite = x('message', { from: ROOM, to: ALICE }, x('body', null, 'join us'), x('x', { xmlns: NS_MUC_USER }, x('invite', { from: `${BOB}/desk` })));
      await host.core.router.route(invite);
      expect(phone.take()).toEqual([invite]);
      expect(laptop.take()).toEqual([carbon('received', `${ALICE}/laptop`, invite, undefined)]);
    });

    it('copies on message/delivered as the router fires it', async () => {
      const msg = chat(`${ALICE}/tablet`, 'delivered elsewhere').withAttrs({ from: `${BOB}/desk` });
      await host.core.hooks.fire('message/delivered', { stanza: msg, to: Jid.parse(`${ALICE}/tablet`), from: Jid.parse(`${BOB}/desk`), sessions: [tablet] });
      expect(phone.take()).toEqual([carbon('received', `${ALICE}/phone`, msg)]);
      expect(laptop.take()).toEqual([carbon('received', `${ALICE}/laptop`, msg)]);
      expect(tablet.take()).toEqual([]);
    });

    it('stops copying when unloaded', async () => {
      await host.core.modules.unload('carbons');
      await phone.receive(chat(`${BOB}/desk`, 'plain'));
      await bob.receive(chat(`${ALICE}/phone`, 'plain back'));
      expect(laptop.take()).toEqual([]);
      await phone.receive(x('iq', { type: 'set', id: 'e' }, x('enable', { xmlns: NS_CARBONS })));
      expect(phone.take().at(-1)!.getChild('error')!.getChild('service-unavailable', NS_STANZAS)).toBeDefined();
    });
  });

  describe('with the archive', () => {
    beforeEach(() => setup([disco, carbons, mam, offline]));

    it('puts the sender\'s archive id in sent copies only, and the recipient\'s in received copies', async () => {
      await phone.receive(chat(`${BOB}/desk`, 'archived', 'a1'));
      const [toBob] = bob.take();
      expect(toBob!.getChildren('stanza-id', NS_SID).map((s) => s.attrs.by)).toEqual([BOB]);
      const [sent] = laptop.take();
      const copy = sent!.getChild('sent', NS_CARBONS)!.getChild('forwarded', NS_FORWARD)!.getChild('message', NS_CLIENT)!;
      const sid = copy.getChild('stanza-id', NS_SID)!;
      expect(sid.attrs.by).toBe(ALICE);

      await bob.receive(chat(`${ALICE}/phone`, 'archived too', 'a2'));
      const [toPhone] = phone.take();
      const [received] = laptop.take();
      const inner = received!.getChild('received', NS_CARBONS)!.getChild('forwarded', NS_FORWARD)!.getChild('message', NS_CLIENT)!;
      expect(inner).toEqual(toPhone!.withAttrs({ xmlns: NS_CLIENT }));
      const sid2 = inner.getChild('stanza-id', NS_SID)!;
      expect(sid2.attrs.by).toBe(ALICE);

      // Those are alice's archive ids.
      await laptop.receive(x('iq', { type: 'set', id: 'q' }, x('query', { xmlns: NS_MAM })));
      const results = laptop.take().filter((m) => m.name === 'message');
      expect(results.map((m) => m.getChild('result', NS_MAM)!.attrs.id)).toEqual([sid.attrs.id, sid2.attrs.id]);
    });

    it('advertises carbons on the server', async () => {
      await phone.receive(x('iq', { type: 'get', id: 'd', to: 'example.test' }, x('query', { xmlns: NS_DISCO_INFO })));
      const features = phone.take()[0]!.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).toContain(NS_CARBONS);
    });
  });
});
