import { createTestHost, type TestHost } from '../helpers/test-host';
import { x, NS_STANZAS, type Element } from '../../src';
import vcard, { NS_VCARD } from '../../modules/vcard';

function card(...children: Element[]): Element {
  return x('vCard', { xmlns: NS_VCARD }, ...children);
}

function stanzaError(condition: string, type: string, text?: string): Element {
  return x('error', { type }, x(condition, { xmlns: NS_STANZAS }),
    text === undefined ? undefined : x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text));
}

const PETER = card(
  x('FN', null, 'Peter Saint-Andre'),
  x('N', null, x('FAMILY', null, 'Saint-Andre'), x('GIVEN', null, 'Peter'), x('MIDDLE')),
  x('NICKNAME', null, 'stpeter'),
  x('TEL', null, x('WORK'), x('VOICE'), x('NUMBER', null, '303-308-3282')),
  x('DESC', null, 'Check out <my> blog & more'),
);

describe('vcard (XEP-0054)', () => {
  let host: TestHost;
  beforeEach(async () => {
    host = await createTestHost({ modules: [vcard] });
  });
  afterEach(() => host.close());

  it('answers a get for one\'s own vCard with an empty <vCard/> when none is stored', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'get', id: 'v1' }, card()));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'v1', to: 'alice@example.test/phone' }, card())]);
  });

  it('stores one\'s own vCard and returns it, with or without a to address', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 'v2' }, PETER));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'v2', to: 'alice@example.test/phone' })]);
    await alice.receive(x('iq', { type: 'get', id: 'v3' }, card()));
    await alice.receive(x('iq', { type: 'get', id: 'v4', to: 'alice@example.test' }, card()));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 'v3', to: 'alice@example.test/phone' }, PETER),
      x('iq', { type: 'result', id: 'v4', to: 'alice@example.test/phone', from: 'alice@example.test' }, PETER),
    ]);
  });

  it('a set replaces the whole vCard', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, PETER));
    await alice.receive(x('iq', { type: 'set', id: 's2' }, card(x('NICKNAME', null, 'pete'))));
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, card()));
    expect(alice.take().pop()).toEqual(
      x('iq', { type: 'result', id: 'g1', to: 'alice@example.test/phone' }, card(x('NICKNAME', null, 'pete'))));
  });

  it('keeps attributes of the vCard element', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const versioned = x('vCard', { xmlns: NS_VCARD, version: '3.0' }, x('FN', null, 'A'));
    await alice.receive(x('iq', { type: 'set', id: 's1' }, versioned));
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, card()));
    expect(alice.take().pop()).toEqual(x('iq', { type: 'result', id: 'g1', to: 'alice@example.test/phone' }, versioned));
  });

  it('lets another user read a vCard at the owner\'s bare JID', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const bob = await host.connect('bob@example.test/pc');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, PETER));
    await bob.receive(x('iq', { type: 'get', id: 'v3', to: 'alice@example.test' }, card()));
    expect(bob.take()).toEqual([
      x('iq', { type: 'result', id: 'v3', to: 'bob@example.test/pc', from: 'alice@example.test' }, PETER),
    ]);
  });

  it('answers service-unavailable for another user with no vCard, as for an account that does not exist', async () => {
    await host.connect('alice@example.test/phone');
    const bob = await host.connect('bob@example.test/pc');
    await bob.receive(x('iq', { type: 'get', id: 'v3', to: 'alice@example.test' }, card()));
    await bob.receive(x('iq', { type: 'get', id: 'v4', to: 'nobody@example.test' }, card()));
    expect(bob.take()).toEqual([
      x('iq', { type: 'error', id: 'v3', from: 'alice@example.test', to: 'bob@example.test/pc' }, stanzaError('service-unavailable', 'cancel')),
      x('iq', { type: 'error', id: 'v4', from: 'nobody@example.test', to: 'bob@example.test/pc' }, stanzaError('service-unavailable', 'cancel')),
    ]);
  });

  it('an empty <vCard/> set removes the vCard', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const bob = await host.connect('bob@example.test/pc');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, PETER));
    await alice.receive(x('iq', { type: 'set', id: 's2' }, card()));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 's1', to: 'alice@example.test/phone' }),
      x('iq', { type: 'result', id: 's2', to: 'alice@example.test/phone' }),
    ]);
    await bob.receive(x('iq', { type: 'get', id: 'v3', to: 'alice@example.test' }, card()));
    expect(bob.take()[0]!.attrs.type).toBe('error');
    expect(host.core.db.prepare('SELECT COUNT(*) FROM vcard').pluck().get()).toBe(0);
  });

  it('refuses to set another user\'s vCard with forbidden', async () => {
    await host.connect('alice@example.test/phone');
    const bob = await host.connect('bob@example.test/pc');
    await bob.receive(x('iq', { type: 'set', id: 'v2', to: 'alice@example.test' }, PETER));
    expect(bob.take()).toEqual([
      x('iq', { type: 'error', id: 'v2', from: 'alice@example.test', to: 'bob@example.test/pc' },
        stanzaError('forbidden', 'auth', "Only the account's owner may change its vCard")),
    ]);
    const alice = await host.connect('alice@example.test/tablet');
    await alice.receive(x('iq', { type: 'get', id: 'g' }, card()));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'g', to: 'alice@example.test/tablet' }, card())]);
  });

  it('refuses a vCard over the size limit with not-acceptable and keeps the old one', async () => {
    await host.close();
    host = await createTestHost({ modules: [vcard], options: { vcard: { maxBytes: 200 } } });
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, card(x('FN', null, 'Small'))));
    const big = card(x('PHOTO', null, x('BINVAL', null, 'A'.repeat(300))));
    await alice.receive(x('iq', { type: 'set', id: 's2' }, big));
    const size = Buffer.byteLength(big.toString());
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 's1', to: 'alice@example.test/phone' }),
      x('iq', { type: 'error', id: 's2', from: 'example.test', to: 'alice@example.test/phone' },
        stanzaError('not-acceptable', 'modify', `The vCard is ${size} bytes; the limit is 200 bytes`)),
    ]);
    await alice.receive(x('iq', { type: 'get', id: 'g' }, card()));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'g', to: 'alice@example.test/phone' }, card(x('FN', null, 'Small')))]);
  });

  it('accepts a 100 KiB vCard with the default limit', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const photo = card(x('PHOTO', null, x('TYPE', null, 'image/png'), x('BINVAL', null, 'A'.repeat(100 * 1024))));
    await alice.receive(x('iq', { type: 'set', id: 's1' }, photo));
    await alice.receive(x('iq', { type: 'get', id: 'g' }, card()));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 's1', to: 'alice@example.test/phone' }),
      x('iq', { type: 'result', id: 'g', to: 'alice@example.test/phone' }, photo),
    ]);
  });

  it('keeps vCards across unload and load, and stops answering while unloaded', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, PETER));
    await host.core.modules.unload('vcard');
    alice.take();
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, card()));
    expect(alice.take()).toEqual([
      x('iq', { type: 'error', id: 'g1', from: 'example.test', to: 'alice@example.test/phone' }, stanzaError('service-unavailable', 'cancel')),
    ]);
    await host.core.modules.load(vcard);
    await alice.receive(x('iq', { type: 'get', id: 'g2' }, card()));
    expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'g2', to: 'alice@example.test/phone' }, PETER)]);
  });

  it('deletes the vCard with the account', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(x('iq', { type: 'set', id: 's1' }, PETER));
    await host.core.deleteUser('alice@example.test');
    expect(host.core.db.prepare('SELECT COUNT(*) FROM vcard').pluck().get()).toBe(0);
    const again = await host.connect('alice@example.test/phone');
    await again.receive(x('iq', { type: 'get', id: 'g' }, card()));
    expect(again.take()).toEqual([x('iq', { type: 'result', id: 'g', to: 'alice@example.test/phone' }, card())]);
  });
});
