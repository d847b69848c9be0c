import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { release, type } from 'node:os';
import { x } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { createTestHost, type TestHost } from '../helpers/test-host';
import version, { NS_VERSION } from '../../modules/version';

const PKG_VERSION = (JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;

describe('version (XEP-0092)', () => {
  let host: TestHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  const versionIq = (id: string) => x('iq', { type: 'get', id, to: 'example.test' }, x('query', { xmlns: NS_VERSION }));

  it('answers with name and version, without the OS by default', async () => {
    host = await createTestHost({ modules: [version] });
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(versionIq('v1'));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 'v1', to: 'alice@example.test/phone', from: 'example.test' },
        x('query', { xmlns: NS_VERSION }, x('name', null, 'xmppd'), x('version', null, PKG_VERSION))),
    ]);
  });

  it('adds the OS when showOs is set', async () => {
    host = await createTestHost({ modules: [version], options: { version: { showOs: true } } });
    const alice = await host.connect('alice@example.test/phone');
    await alice.receive(versionIq('v2'));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 'v2', to: 'alice@example.test/phone', from: 'example.test' },
        x('query', { xmlns: NS_VERSION },
          x('name', null, 'xmppd'), x('version', null, PKG_VERSION), x('os', null, `${type()} ${release()}`))),
    ]);
  });

  it('does not answer for accounts, nor when unloaded', async () => {
    host = await createTestHost({ modules: [version] });
    const alice = await host.connect('alice@example.test/phone');
    await host.connect('bob@example.test/laptop');
    await alice.receive(x('iq', { type: 'get', id: 'v3', to: 'bob@example.test' }, x('query', { xmlns: NS_VERSION })));
    await host.core.modules.unload('version');
    await alice.receive(versionIq('v4'));
    const error = x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS }));
    expect(alice.take()).toEqual([
      x('iq', { type: 'error', id: 'v3', from: 'bob@example.test', to: 'alice@example.test/phone' }, error),
      x('iq', { type: 'error', id: 'v4', from: 'example.test', to: 'alice@example.test/phone' }, error),
    ]);
  });
});
