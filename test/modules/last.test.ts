import { x, type Element } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { defineModule } from '../../src/module';
import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import last, { NS_LAST } from '../../modules/last';

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

const ALICE = 'alice@example.test/phone';
const lastIq = (id: string, to?: string) => x('iq', { type: 'get', id, to }, x('query', { xmlns: NS_LAST }));
const result = (id: string, from: string | undefined, seconds: number, status?: string) =>
  x('iq', { type: 'result', id, to: ALICE, from }, x('query', { xmlns: NS_LAST, seconds }, status));
const error = (id: string, from: string, type: string, condition: string, text?: string) =>
  x('iq', { type: 'error', id, from, to: ALICE },
    x('error', { type }, x(condition, { xmlns: NS_STANZAS }), text !== undefined ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text) : undefined));
const FORBIDDEN_TEXT = 'Not subscribed to this account\'s presence';
const NONE_TEXT = 'No last activity is recorded for this account';

describe('last (XEP-0012)', () => {
  let host: TestHost;
  let clock: jest.SpyInstance<number, []>;
  let now: number;
  beforeEach(async () => {
    now = Date.UTC(2024, 5, 1, 12, 0, 0);
    clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    host = await createTestHost({
      modules: [last, fakeRoster({
        'bob@example.test alice@example.test': 'both',
        'carol@example.test alice@example.test': 'from',
        'dave@example.test alice@example.test': 'to',
      })],
    });
  });
  afterEach(async () => {
    await host.close();
    clock.mockRestore();
  });

  /** Bob logs in, becomes available, says goodbye with `status` and logs out. */
  async function visit(jid: string, status?: string): Promise<FakeSession> {
    const s = await host.connect(jid);
    s.presence = x('presence');
    if (status !== undefined) {
      await s.receive(x('presence', { type: 'unavailable' }, x('status', null, status)));
      s.presence = undefined; // what the presence module does with it
    }
    await host.disconnect(s);
    return s;
  }

  it('answers a query to the server with its uptime', async () => {
    const alice = await host.connect(ALICE);
    const before = Math.floor(process.uptime());
    await alice.receive(lastIq('s1', 'example.test'));
    const [reply] = alice.take() as [Element];
    const seconds = Number(reply.getChild('query', NS_LAST)?.attrs.seconds);
    expect(reply).toEqual(result('s1', 'example.test', seconds));
    expect(seconds).toBeGreaterThanOrEqual(before);
    expect(seconds).toBeLessThanOrEqual(Math.ceil(process.uptime()));
  });

  it('tells a subscribed contact how long ago the account logged out, with its last status', async () => {
    await visit('bob@example.test/laptop', 'Heading Home');
    now += 903_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('l1', 'bob@example.test'));
    expect(alice.take()).toEqual([result('l1', 'bob@example.test', 903, 'Heading Home')]);
  });

  it('records the logout without status text when the session just ends', async () => {
    await visit('carol@example.test/pc');
    now += 60_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('l2', 'carol@example.test'));
    expect(alice.take()).toEqual([result('l2', 'carol@example.test', 60)]);
  });

  it('takes the time of an unavailable presence while the stream stays open', async () => {
    const bob = await host.connect('bob@example.test/laptop');
    bob.presence = x('presence');
    await bob.receive(x('presence', { type: 'unavailable' }, x('status', null, 'Lunch')));
    bob.presence = undefined;
    now += 120_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('l3', 'bob@example.test'));
    expect(alice.take()).toEqual([result('l3', 'bob@example.test', 120, 'Lunch')]);
  });

  it('forgets a goodbye status once the session is available again', async () => {
    const bob = await host.connect('bob@example.test/laptop');
    bob.presence = x('presence');
    await bob.receive(x('presence', { type: 'unavailable' }, x('status', null, 'brb')));
    await bob.receive(x('presence'));
    await host.disconnect(bob);
    now += 30_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('l8', 'bob@example.test'));
    expect(alice.take()).toEqual([result('l8', 'bob@example.test', 30)]);
  });

  it('answers seconds 0 and no text while the account has an available resource', async () => {
    await visit('bob@example.test/laptop', 'Heading Home');
    const phone = await host.connect('bob@example.test/phone');
    phone.presence = x('presence');
    // Another of bob's sessions going away does not count as a logout while phone stays available.
    const laptop = await host.connect('bob@example.test/laptop');
    await host.disconnect(laptop);
    now += 500_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('l4', 'bob@example.test'));
    await host.disconnect(phone);
    now += 5_000;
    await alice.receive(lastIq('l5', 'bob@example.test'));
    expect(alice.take()).toEqual([result('l4', 'bob@example.test', 0), result('l5', 'bob@example.test', 5)]);
  });

  it('lets the account query itself, with or without a to address', async () => {
    const alice = await host.connect(ALICE);
    alice.presence = x('presence');
    await alice.receive(lastIq('l6', 'alice@example.test'));
    await alice.receive(lastIq('l7'));
    expect(alice.take()).toEqual([result('l6', 'alice@example.test', 0), result('l7', undefined, 0)]);
  });

  it('answers forbidden to those not subscribed to the account\'s presence', async () => {
    await visit('dave@example.test/pc', 'bye'); // dave has a subscription *to* alice only
    await visit('erin@example.test/pc', 'bye'); // no subscription at all
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('f1', 'dave@example.test'));
    await alice.receive(lastIq('f2', 'erin@example.test'));
    expect(alice.take()).toEqual([
      error('f1', 'dave@example.test', 'auth', 'forbidden', FORBIDDEN_TEXT),
      error('f2', 'erin@example.test', 'auth', 'forbidden', FORBIDDEN_TEXT),
    ]);
  });

  it('answers forbidden to everyone else when no roster module is loaded', async () => {
    await host.core.modules.unload('roster');
    await visit('bob@example.test/laptop', 'bye');
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('f3', 'bob@example.test'));
    expect(alice.take()).toEqual([error('f3', 'bob@example.test', 'auth', 'forbidden', FORBIDDEN_TEXT)]);
  });

  it('answers item-not-found for an account that never logged out, and service-unavailable for no account', async () => {
    await host.core.createUser('bob@example.test', 'secret');
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('n1', 'bob@example.test'));
    await alice.receive(lastIq('n2', 'nobody@example.test'));
    expect(alice.take()).toEqual([
      error('n1', 'bob@example.test', 'cancel', 'item-not-found', NONE_TEXT),
      error('n2', 'nobody@example.test', 'cancel', 'service-unavailable'),
    ]);
  });

  it('keeps the record across unload and load', async () => {
    await visit('bob@example.test/laptop', 'Heading Home');
    await host.core.modules.unload('last');
    await host.core.modules.load(last);
    now += 10_000;
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('r1', 'bob@example.test'));
    expect(alice.take()).toEqual([result('r1', 'bob@example.test', 10, 'Heading Home')]);
  });

  it('forgets a deleted account', async () => {
    await visit('bob@example.test/laptop', 'Heading Home');
    await host.core.deleteUser('bob@example.test');
    await host.core.createUser('bob@example.test', 'secret');
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('d1', 'bob@example.test'));
    expect(alice.take()).toEqual([error('d1', 'bob@example.test', 'cancel', 'item-not-found', NONE_TEXT)]);
  });

  it('deleting a connected account leaves no record behind', async () => {
    const bob = await host.connect('bob@example.test/laptop');
    bob.presence = x('presence');
    await host.core.deleteUser('bob@example.test');
    await new Promise((r) => setImmediate(r));
    await host.core.createUser('bob@example.test', 'secret');
    const alice = await host.connect(ALICE);
    await alice.receive(lastIq('d2', 'bob@example.test'));
    expect(alice.take()).toEqual([error('d2', 'bob@example.test', 'cancel', 'item-not-found', NONE_TEXT)]);
  });

  it('stops answering when unloaded', async () => {
    const alice = await host.connect(ALICE);
    await host.core.modules.unload('last');
    await alice.receive(lastIq('u1', 'example.test'));
    expect(alice.take()).toEqual([error('u1', 'example.test', 'cancel', 'service-unavailable')]);
  });
});
