import { x } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { defineModule, type ModuleApi } from '../../src/module';
import { createTestHost, type TestHost } from '../helpers/test-host';
import disco, { NS_DISCO_INFO, NS_DISCO_ITEMS, type DiscoService } from '../../modules/disco';
import ping, { NS_PING } from '../../modules/ping';
import time, { NS_TIME } from '../../modules/time';

type Sub = 'none' | 'to' | 'from' | 'both';

/** Stands in for the roster module's service: subscriptions keyed 'user contact'. */
function fakeRoster(subs: Record<string, Sub>) {
  return defineModule({
    name: 'roster',
    setup(api) {
      const impl = { subscription: async (user: string, contact: string): Promise<Sub> => subs[`${user} ${contact}`] ?? 'none' };
      api.provide('roster' as never, impl as never);
    },
  });
}

/** Captures the disco service as another module would see it. */
function serviceGrabber(out: { disco?: DiscoService }) {
  return defineModule({
    name: 'grabber',
    setup(api: ModuleApi) {
      out.disco = api.service('disco');
    },
  });
}

const ALICE = 'alice@example.test/phone';
const unavailable = x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS }));
const notFound = x('error', { type: 'cancel' }, x('item-not-found', { xmlns: NS_STANZAS }), x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, 'No such node'));
const info = (id: string, to?: string, node?: string) => x('iq', { type: 'get', id, to }, x('query', { xmlns: NS_DISCO_INFO, node }));
const items = (id: string, to?: string, node?: string) => x('iq', { type: 'get', id, to }, x('query', { xmlns: NS_DISCO_ITEMS, node }));
const result = (id: string, from: string | undefined, ...children: ReturnType<typeof x>[]) =>
  x('iq', { type: 'result', id, to: ALICE, from }, ...children);
const error = (id: string, from: string, err: ReturnType<typeof x>) => x('iq', { type: 'error', id, from, to: ALICE }, err);

describe('disco (XEP-0030)', () => {
  let host: TestHost;
  const grabbed: { disco?: DiscoService } = {};
  beforeEach(async () => {
    host = await createTestHost({
      modules: [disco, ping, time, fakeRoster({ 'bob@example.test alice@example.test': 'from', 'carol@example.test alice@example.test': 'to' }), serviceGrabber(grabbed)],
    });
  });
  afterEach(() => host.close());

  describe('the server', () => {
    it('answers disco#info with the server identity and the features of all loaded modules', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(info('i1', 'example.test'));
      expect(alice.take()).toEqual([
        result('i1', 'example.test', x('query', { xmlns: NS_DISCO_INFO },
          x('identity', { category: 'server', type: 'im', name: 'xmppd' }),
          x('feature', { var: NS_DISCO_INFO }),
          x('feature', { var: NS_DISCO_ITEMS }),
          x('feature', { var: NS_PING }),
          x('feature', { var: NS_TIME }),
        )),
      ]);
    });

    it('follows modules being unloaded and loaded', async () => {
      const alice = await host.connect(ALICE);
      await host.core.modules.unload('time');
      await alice.receive(info('i2', 'example.test'));
      await host.core.modules.load(time);
      await host.core.modules.unload('ping');
      await alice.receive(info('i2b', 'example.test'));
      const vars = alice.take().map((reply) => reply.getChild('query', NS_DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var));
      expect(vars).toEqual([[NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING], [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_TIME]]);
    });

    it('answers an unknown node with item-not-found', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(info('i3', 'example.test', 'http://example.test/caps#abc'));
      await alice.receive(items('i4', 'example.test', 'some-node'));
      expect(alice.take()).toEqual([error('i3', 'example.test', notFound), error('i4', 'example.test', notFound)]);
    });

    it('answers disco#items with an empty list by default', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(items('i5', 'example.test'));
      expect(alice.take()).toEqual([result('i5', 'example.test', x('query', { xmlns: NS_DISCO_ITEMS }))]);
    });

    it('lists items other modules add through the disco service, until they remove them', async () => {
      const alice = await host.connect(ALICE);
      const removeMuc = grabbed.disco!.addItem('conference.example.test', 'Chatrooms');
      grabbed.disco!.addItem('upload.example.test');
      grabbed.disco!.addItem('conference.other.test', 'Elsewhere'); // under no hosted domain: listed anyway
      await alice.receive(items('i6', 'example.test'));
      removeMuc();
      await alice.receive(items('i7', 'example.test'));
      expect(alice.take()).toEqual([
        result('i6', 'example.test', x('query', { xmlns: NS_DISCO_ITEMS },
          x('item', { jid: 'conference.example.test', name: 'Chatrooms' }),
          x('item', { jid: 'conference.other.test', name: 'Elsewhere' }),
          x('item', { jid: 'upload.example.test' }),
        )),
        result('i7', 'example.test', x('query', { xmlns: NS_DISCO_ITEMS },
          x('item', { jid: 'conference.other.test', name: 'Elsewhere' }),
          x('item', { jid: 'upload.example.test' }),
        )),
      ]);
    });

    it('rejects disco of type set', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(x('iq', { type: 'set', id: 'i8', to: 'example.test' }, x('query', { xmlns: NS_DISCO_INFO })));
      expect(alice.take()).toEqual([error('i8', 'example.test', unavailable)]);
    });
  });

  describe('accounts', () => {
    const accountInfo = (...extra: ReturnType<typeof x>[]) => x('query', { xmlns: NS_DISCO_INFO },
      x('identity', { category: 'account', type: 'registered' }),
      ...extra,
      x('feature', { var: NS_DISCO_INFO }),
      x('feature', { var: NS_DISCO_ITEMS }),
    );

    it('answers disco#info to the own bare JID, and with no to address', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(info('a1', 'alice@example.test'));
      await alice.receive(info('a2'));
      expect(alice.take()).toEqual([result('a1', 'alice@example.test', accountInfo()), result('a2', undefined, accountInfo())]);
    });

    it('answers a contact the account shares its presence with (subscription from)', async () => {
      const alice = await host.connect(ALICE);
      await host.core.createUser('bob@example.test', 'secret');
      await alice.receive(info('a3', 'bob@example.test'));
      expect(alice.take()).toEqual([result('a3', 'bob@example.test', accountInfo())]);
    });

    it('answers service-unavailable to those not subscribed to the account (§8)', async () => {
      const alice = await host.connect(ALICE);
      await host.core.createUser('carol@example.test', 'secret'); // carol only has a subscription *to* alice
      await host.core.createUser('dave@example.test', 'secret');
      await alice.receive(info('a4', 'carol@example.test'));
      await alice.receive(info('a5', 'dave@example.test'));
      await alice.receive(info('a6', 'nobody@example.test'));
      expect(alice.take()).toEqual([
        error('a4', 'carol@example.test', unavailable),
        error('a5', 'dave@example.test', unavailable),
        error('a6', 'nobody@example.test', unavailable),
      ]);
    });

    it('answers only the account itself when no roster module is loaded', async () => {
      await host.core.modules.unload('roster');
      const alice = await host.connect(ALICE);
      await host.core.createUser('bob@example.test', 'secret');
      await alice.receive(info('a7', 'bob@example.test'));
      await alice.receive(info('a8', 'alice@example.test'));
      expect(alice.take()).toEqual([error('a7', 'bob@example.test', unavailable), result('a8', 'alice@example.test', accountInfo())]);
    });

    it('answers a node query with item-not-found', async () => {
      const alice = await host.connect(ALICE);
      await alice.receive(info('a9', 'alice@example.test', 'urn:xmpp:mam:2'));
      await alice.receive(items('a10', 'alice@example.test', 'urn:xmpp:avatar:data'));
      expect(alice.take()).toEqual([error('a9', 'alice@example.test', notFound), error('a10', 'alice@example.test', notFound)]);
    });

    it('includes account features and identities other modules add', async () => {
      const alice = await host.connect(ALICE);
      const d = grabbed.disco!;
      const removeMam = d.addAccountFeature('urn:xmpp:mam:2');
      const removeMam2 = d.addAccountFeature('urn:xmpp:mam:2');
      const removePep = d.addAccountIdentity({ category: 'pubsub', type: 'pep' });
      await alice.receive(info('a11'));
      removeMam();
      await alice.receive(info('a12')); // still added by the second registration
      removeMam2();
      removePep();
      await alice.receive(info('a13'));
      expect(alice.take()).toEqual([
        result('a11', undefined, x('query', { xmlns: NS_DISCO_INFO },
          x('identity', { category: 'account', type: 'registered' }),
          x('identity', { category: 'pubsub', type: 'pep' }),
          x('feature', { var: NS_DISCO_INFO }),
          x('feature', { var: NS_DISCO_ITEMS }),
          x('feature', { var: 'urn:xmpp:mam:2' }),
        )),
        result('a12', undefined, x('query', { xmlns: NS_DISCO_INFO },
          x('identity', { category: 'account', type: 'registered' }),
          x('identity', { category: 'pubsub', type: 'pep' }),
          x('feature', { var: NS_DISCO_INFO }),
          x('feature', { var: NS_DISCO_ITEMS }),
          x('feature', { var: 'urn:xmpp:mam:2' }),
        )),
        result('a13', undefined, accountInfo()),
      ]);
    });

    it('answers disco#items with an empty result, whoever asks', async () => {
      const alice = await host.connect(ALICE);
      await host.core.createUser('dave@example.test', 'secret');
      await alice.receive(items('a14', 'alice@example.test'));
      await alice.receive(items('a15', 'dave@example.test'));
      expect(alice.take()).toEqual([
        result('a14', 'alice@example.test', x('query', { xmlns: NS_DISCO_ITEMS })),
        result('a15', 'dave@example.test', x('query', { xmlns: NS_DISCO_ITEMS })),
      ]);
    });
  });

  it('withdraws its answers and its service when unloaded', async () => {
    const alice = await host.connect(ALICE);
    await host.core.modules.unload('grabber');
    await host.core.modules.unload('disco');
    await alice.receive(info('u1', 'example.test'));
    await alice.receive(items('u2', 'alice@example.test'));
    expect(alice.take()).toEqual([error('u1', 'example.test', unavailable), error('u2', 'alice@example.test', unavailable)]);
    const after: { disco?: DiscoService } = {};
    await host.core.modules.load(serviceGrabber(after));
    expect(after.disco).toBeUndefined();
  });
});
