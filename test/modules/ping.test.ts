import { x } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { createTestHost, type TestHost } from '../helpers/test-host';
import ping, { NS_PING } from '../../modules/ping';

describe('ping (XEP-0199)', () => {
  let host: TestHost;
  beforeEach(async () => {
    host = await createTestHost({ modules: [ping] });
  });
  afterEach(() => host.close());

  const pingIq = (id: string, to?: string) => x('iq', { type: 'get', id, to }, x('ping', { xmlns: NS_PING }));
  const unavailable = (id: string, from: string) =>
    x('iq', { type: 'error', id, from, to: 'alice@example.test/phone' },
      x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS })));

  it('answers a ping to the server with an empty result', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(pingIq('p1', 'example.test'));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p1', to: 'alice@example.test/phone', from: 'example.test' })]);
  });

  it('answers a ping without a to address (for the server)', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(pingIq('p2'));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p2', to: 'alice@example.test/phone' })]);
  });

  it('does not answer on behalf of an account', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await host.connect('bob@example.test/laptop');
    await alice.receive(pingIq('p3', 'bob@example.test'));
    expect(alice.take()).toEqual([unavailable('p3', 'bob@example.test')]);
  });

  it('rejects a ping of type set', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 'p4', to: 'example.test' }, x('ping', { xmlns: NS_PING })));
    expect(alice.take()).toEqual([unavailable('p4', 'example.test')]);
  });

  it('stops answering when unloaded, and answers again when loaded', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await host.core.modules.unload('ping');
    await alice.receive(pingIq('p5', 'example.test'));
    expect(alice.take()).toEqual([unavailable('p5', 'example.test')]);
    await host.core.modules.load(ping);
    await alice.receive(pingIq('p6', 'example.test'));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p6', to: 'alice@example.test/phone', from: 'example.test' })]);
  });
});
