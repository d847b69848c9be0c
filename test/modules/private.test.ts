import { createTestHost, type TestHost } from '../helpers/test-host';
import { x, NS_STANZAS, type Element } from '../../src';
import privateStorage, { NS_PRIVATE } from '../../modules/private';

function query(...children: Element[]): Element {
  return x('query', { xmlns: NS_PRIVATE }, ...children);
}

function stanzaError(condition: string, type: string, text?: string): Element {
  return x('error', { type }, x(condition, { xmlns: NS_STANZAS }),
    text === undefined ? undefined : x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text));
}

const PREFS = x('exodus', { xmlns: 'exodus:prefs' }, x('defaultnick', null, 'Hamlet'));
const ME = 'alice@example.test/phone';

describe('private (XEP-0049)', () => {
  let host: TestHost;
  beforeEach(async () => {
    host = await createTestHost({ modules: [privateStorage] });
  });
  afterEach(() => host.close());

  const result = (id: string, ...children: Element[]) => x('iq', { type: 'result', id, to: ME }, ...children);
  const error = (id: string, err: Element) => x('iq', { type: 'error', id, from: 'example.test', to: ME }, err);

  it('stores an element and returns it for a get of its namespace (examples 1 and 2)', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: '1001' }, query(PREFS)));
    await alice.receive(x('iq', { type: 'get', id: '1002' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([result('1001'), result('1002', query(PREFS))]);
  });

  it('returns the requested element as sent when nothing is stored', async () => {
    const alice = await host.connect(ME);
    const request = x('storage', { xmlns: 'storage:bookmarks' });
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query(request)));
    expect(alice.take()).toEqual([result('g', query(request))]);
  });

  it('answers for the own bare JID too', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's', to: 'alice@example.test' }, query(PREFS)));
    await alice.receive(x('iq', { type: 'get', id: 'g', to: 'alice@example.test' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 's', to: ME, from: 'alice@example.test' }),
      x('iq', { type: 'result', id: 'g', to: ME, from: 'alice@example.test' }, query(PREFS)),
    ]);
  });

  it('a set replaces what its namespace held, and leaves other namespaces alone', async () => {
    const alice = await host.connect(ME);
    const bookmarks = x('storage', { xmlns: 'storage:bookmarks' }, x('conference', { jid: 'room@muc.example.test', autojoin: 'true' }));
    await alice.receive(x('iq', { type: 'set', id: 's1' }, query(PREFS)));
    await alice.receive(x('iq', { type: 'set', id: 's2' }, query(bookmarks)));
    const newPrefs = x('exodus', { xmlns: 'exodus:prefs' }, x('defaultnick', null, 'Ophelia'));
    await alice.receive(x('iq', { type: 'set', id: 's3' }, query(newPrefs)));
    alice.take();
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    await alice.receive(x('iq', { type: 'get', id: 'g2' }, query(x('storage', { xmlns: 'storage:bookmarks' }))));
    expect(alice.take()).toEqual([result('g1', query(newPrefs)), result('g2', query(bookmarks))]);
  });

  it('stores an empty element as given (it replaces earlier data)', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's1' }, query(PREFS)));
    const empty = x('exodus', { xmlns: 'exodus:prefs', theme: 'dark' });
    await alice.receive(x('iq', { type: 'set', id: 's2' }, query(empty)));
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([result('s1'), result('s2'), result('g', query(empty))]);
  });

  it('stores several elements of one namespace together, and several namespaces in one set', async () => {
    const alice = await host.connect(ME);
    const a = x('note', { xmlns: 'urn:example:notes', id: '1' }, 'first');
    const b = x('note', { xmlns: 'urn:example:notes', id: '2' }, 'second');
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(a, PREFS, b)));
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, query(x('note', { xmlns: 'urn:example:notes' }))));
    await alice.receive(x('iq', { type: 'get', id: 'g2' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([result('s'), result('g1', query(a, b)), result('g2', query(PREFS))]);
  });

  it('refuses an empty query with not-acceptable', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query()));
    await alice.receive(x('iq', { type: 'set', id: 's' }, query()));
    const err = stanzaError('not-acceptable', 'modify', 'The query needs a child element in its own namespace');
    expect(alice.take()).toEqual([error('g', err), error('s', err)]);
  });

  it('refuses a child without a namespace of its own with not-acceptable', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(x('prefs', null, 'x'))));
    expect(alice.take()).toEqual([error('s', stanzaError('not-acceptable', 'modify', '<prefs/> needs a namespace of its own'))]);
  });

  it.each(['jabber:iq:roster', 'http://jabber.org/protocol/disco#info', 'vcard-temp'])('refuses the reserved namespace %s with not-acceptable', async (ns) => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(x('data', { xmlns: ns }))));
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query(x('data', { xmlns: ns }))));
    const err = stanzaError('not-acceptable', 'modify', `The namespace ${ns} is reserved`);
    expect(alice.take()).toEqual([error('s', err), error('g', err)]);
    expect(host.core.db.prepare('SELECT COUNT(*) FROM private_xml').pluck().get()).toBe(0);
  });

  it('refuses a set with one reserved namespace among others, storing nothing', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(PREFS, x('query', { xmlns: 'jabber:iq:roster' }))));
    expect(alice.take()[0]!.attrs.type).toBe('error');
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([result('g', query(x('exodus', { xmlns: 'exodus:prefs' })))]);
  });

  it('refuses a get for more than one namespace with bad-request', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'get', id: 'g' }, query(x('a', { xmlns: 'urn:a' }), x('b', { xmlns: 'urn:b' }))));
    expect(alice.take()).toEqual([error('g', stanzaError('bad-request', 'modify', 'Only one namespace may be retrieved per request'))]);
  });

  it('refuses to get or set another user\'s data with forbidden', async () => {
    const alice = await host.connect(ME);
    await host.connect('bob@example.test/pc');
    await alice.receive(x('iq', { type: 'set', id: '1003', to: 'bob@example.test' }, query(PREFS)));
    await alice.receive(x('iq', { type: 'get', id: '1004', to: 'bob@example.test' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    const err = stanzaError('forbidden', 'auth', 'Private storage belongs to its account alone');
    expect(alice.take()).toEqual([
      x('iq', { type: 'error', id: '1003', from: 'bob@example.test', to: ME }, err),
      x('iq', { type: 'error', id: '1004', from: 'bob@example.test', to: ME }, err),
    ]);
    expect(host.core.db.prepare('SELECT COUNT(*) FROM private_xml').pluck().get()).toBe(0);
  });

  it('keeps data across unload and load, and stops answering while unloaded', async () => {
    const alice = await host.connect(ME);
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(PREFS)));
    await host.core.modules.unload('private');
    alice.take();
    await alice.receive(x('iq', { type: 'get', id: 'g1' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([error('g1', stanzaError('service-unavailable', 'cancel'))]);
    await host.core.modules.load(privateStorage);
    await alice.receive(x('iq', { type: 'get', id: 'g2' }, query(x('exodus', { xmlns: 'exodus:prefs' }))));
    expect(alice.take()).toEqual([result('g2', query(PREFS))]);
  });

  it('deletes the data with the account', async () => {
    const alice = await host.connect(ME);
    const bob = await host.connect('bob@example.test/pc');
    await alice.receive(x('iq', { type: 'set', id: 's' }, query(PREFS)));
    await bob.receive(x('iq', { type: 'set', id: 's' }, query(PREFS)));
    await host.core.deleteUser('alice@example.test');
    expect(host.core.db.prepare('SELECT account FROM private_xml').pluck().all()).toEqual(['bob@example.test']);
  });
});
