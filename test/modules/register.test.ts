import { createTestHost, settle, type TestHost } from '../helpers/test-host';
import { Jid, x, NS_STANZAS, type Element } from '../../src';
import { verifyPassword } from '../../src/sasl';
import register, { NS_REGISTER } from '../../modules/register';

const DOMAIN = Jid.parse('example.test');
const ME = 'alice@example.test/phone';

function stanzaError(condition: string, type: string, text?: string): Element {
  return x('error', { type }, x(condition, { xmlns: NS_STANZAS }),
    text === undefined ? undefined : x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text));
}
const query = (...children: (Element | undefined)[]) => x('query', { xmlns: NS_REGISTER }, children);
const fields = (username?: string, password?: string) => query(
  username === undefined ? undefined : x('username', null, username),
  password === undefined ? undefined : x('password', null, password),
);

describe('register (XEP-0077)', () => {
  let host: TestHost;
  afterEach(() => host.close());

  /** An IQ on an unauthenticated stream from `address`; returns the replies. */
  async function preauth(stanza: Element, address = '192.0.2.1'): Promise<Element[]> {
    const replies: Element[] = [];
    await host.core.router.handlePreAuthIq(stanza, DOMAIN, address, (el) => replies.push(el));
    return replies;
  }

  async function passwordWorks(bare: string, password: string): Promise<boolean> {
    const creds = await host.core.accounts.credentials(bare, 'sha256');
    return creds !== undefined && verifyPassword(creds, 'sha256', password);
  }

  describe('with registration off (the default)', () => {
    beforeEach(async () => {
      host = await createTestHost({ modules: [register] });
    });

    it('offers no pre-authentication handler, so the stream feature is not advertised', () => {
      expect(host.core.router.hasPreAuthIq('get', NS_REGISTER, 'query')).toBe(false);
      expect(host.core.router.hasPreAuthIq('set', NS_REGISTER, 'query')).toBe(false);
    });

    it('answers registration attempts with service-unavailable', async () => {
      expect(await preauth(x('iq', { type: 'get', id: 'reg1' }, query()))).toEqual([
        x('iq', { type: 'error', id: 'reg1', from: 'example.test' }, stanzaError('service-unavailable', 'cancel')),
      ]);
      expect(await preauth(x('iq', { type: 'set', id: 'reg2' }, fields('bill', 'Calliope')))).toEqual([
        x('iq', { type: 'error', id: 'reg2', from: 'example.test' }, stanzaError('service-unavailable', 'cancel')),
      ]);
      expect(await host.core.accounts.exists('bill@example.test')).toBe(false);
    });

    it('still lets a user change the password', async () => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, fields('alice', 'newpass')));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'change1', to: ME })]);
      expect(await passwordWorks('alice@example.test', 'newpass')).toBe(true);
    });
  });

  describe('registration of new accounts', () => {
    beforeEach(async () => {
      host = await createTestHost({ modules: [register], options: { register: { allowRegistration: true } } });
    });

    it('is advertised through a pre-authentication handler', () => {
      expect(host.core.router.hasPreAuthIq('get', NS_REGISTER, 'query')).toBe(true);
    });

    it('returns the fields to fill in', async () => {
      expect(await preauth(x('iq', { type: 'get', id: 'reg1', to: 'example.test' }, query()))).toEqual([
        x('iq', { type: 'result', id: 'reg1', from: 'example.test' }, query(
          x('instructions', null, 'Choose a username and password to register with this server.'), x('username'), x('password'))),
      ]);
    });

    it('creates the account', async () => {
      const created: string[] = [];
      host.core.hooks.on('user/created', ({ jid }) => void created.push(jid.toString()));
      expect(await preauth(x('iq', { type: 'set', id: 'reg2' }, fields('Bill', 'Calliope')))).toEqual([
        x('iq', { type: 'result', id: 'reg2', from: 'example.test' }),
      ]);
      expect(created).toEqual(['bill@example.test']);
      expect(await passwordWorks('bill@example.test', 'Calliope')).toBe(true);
    });

    it('refuses a taken username with conflict', async () => {
      await host.core.createUser('bill@example.test', 'theglobe');
      expect(await preauth(x('iq', { type: 'set', id: 'reg2' }, fields('bill', 'm1cro$oft')))).toEqual([
        x('iq', { type: 'error', id: 'reg2', from: 'example.test' }, stanzaError('conflict', 'cancel', 'That username is taken')),
      ]);
      expect(await passwordWorks('bill@example.test', 'theglobe')).toBe(true);
    });

    it.each([
      ['no password', fields('bill')],
      ['an empty password', fields('bill', '')],
      ['no username', fields(undefined, 'Calliope')],
      ['an empty query', query()],
    ])('refuses %s with not-acceptable', async (_, q) => {
      expect(await preauth(x('iq', { type: 'set', id: 'reg2' }, q))).toEqual([
        x('iq', { type: 'error', id: 'reg2', from: 'example.test' }, stanzaError('not-acceptable', 'modify', 'A username and a password are required')),
      ]);
      expect(await host.core.accounts.list()).toEqual([]);
    });

    it.each([['a@b', 'a@b'], ['a/b', 'a/b'], ['with space', 'with space'], ['1100 characters', 'x'.repeat(1100)]])('refuses the username %s with jid-malformed', async (_, username) => {
      const [reply] = await preauth(x('iq', { type: 'set', id: 'reg2' }, fields(username, 'Calliope')));
      expect(reply!.attrs.type).toBe('error');
      expect(reply!.getChild('error')!.getChild('jid-malformed', NS_STANZAS)).toBeDefined();
      expect(reply!.getChild('error')!.attrs.type).toBe('modify');
      expect(await host.core.accounts.list()).toEqual([]);
    });

    it('refuses a password shorter than minPasswordLength with not-acceptable', async () => {
      await host.close();
      host = await createTestHost({ modules: [register], options: { register: { allowRegistration: true, minPasswordLength: 8 } } });
      expect(await preauth(x('iq', { type: 'set', id: 'reg2' }, fields('bill', 'short')))).toEqual([
        x('iq', { type: 'error', id: 'reg2', from: 'example.test' }, stanzaError('not-acceptable', 'modify', 'The password must have at least 8 characters')),
      ]);
      expect(await preauth(x('iq', { type: 'set', id: 'reg3' }, fields('bill', 'long enough')))).toEqual([
        x('iq', { type: 'result', id: 'reg3', from: 'example.test' }),
      ]);
    });

    it('refuses a cancellation before authentication with unexpected-request', async () => {
      expect(await preauth(x('iq', { type: 'set', id: 'unreg1' }, query(x('remove'))))).toEqual([
        x('iq', { type: 'error', id: 'unreg1', from: 'example.test' },
          stanzaError('unexpected-request', 'wait', 'Authenticate before cancelling a registration')),
      ]);
    });

    it('limits accounts per address with policy-violation', async () => {
      for (const name of ['u1', 'u2', 'u3']) {
        expect((await preauth(x('iq', { type: 'set', id: name }, fields(name, 'pw'))))[0]!.attrs.type).toBe('result');
      }
      expect(await preauth(x('iq', { type: 'set', id: 'u4' }, fields('u4', 'pw')))).toEqual([
        x('iq', { type: 'error', id: 'u4', from: 'example.test' },
          stanzaError('policy-violation', 'wait', 'Too many accounts were registered from this address recently; try again later')),
      ]);
      expect(await host.core.accounts.exists('u4@example.test')).toBe(false);
      // Other addresses, and loopback (exempt by default), are not affected.
      expect((await preauth(x('iq', { type: 'set', id: 'u5' }, fields('u5', 'pw')), '198.51.100.7'))[0]!.attrs.type).toBe('result');
      for (const name of ['l1', 'l2', 'l3', 'l4']) {
        expect((await preauth(x('iq', { type: 'set', id: name }, fields(name, 'pw')), '127.0.0.1'))[0]!.attrs.type).toBe('result');
      }
    });

    it('holds the limit for registrations in flight at the same time', async () => {
      const replies = await Promise.all(['p1', 'p2', 'p3', 'p4', 'p5'].map((name) => preauth(x('iq', { type: 'set', id: name }, fields(name, 'pw')))));
      const conditions = replies.map(([r]) => r!.attrs.type === 'result' ? 'ok' : r!.getChild('error')!.elements[0]!.name);
      expect(conditions.filter((c) => c === 'ok')).toHaveLength(3);
      expect(conditions.filter((c) => c === 'policy-violation')).toHaveLength(2);
      expect(await host.core.accounts.list()).toHaveLength(3);
    });

    it('counts only accounts actually created, and forgets them after the window', async () => {
      await host.close();
      host = await createTestHost({
        modules: [register],
        options: { register: { allowRegistration: true, registrationsPerAddress: 1, registrationWindowSeconds: 60, throttleExempt: [] } },
      });
      await host.core.createUser('taken@example.test', 'pw');
      expect((await preauth(x('iq', { type: 'set', id: 'a' }, fields('taken', 'pw')), '127.0.0.1'))[0]!.getChild('error')!.getChild('conflict', NS_STANZAS)).toBeDefined();
      expect((await preauth(x('iq', { type: 'set', id: 'b' }, fields('first', 'pw')), '127.0.0.1'))[0]!.attrs.type).toBe('result');
      const [refused] = await preauth(x('iq', { type: 'set', id: 'c' }, fields('second', 'pw')), '127.0.0.1');
      expect(refused!.getChild('error')!.getChild('policy-violation', NS_STANZAS)).toBeDefined();
      const now = Date.now();
      const spy = jest.spyOn(Date, 'now').mockReturnValue(now + 61_000);
      try {
        expect((await preauth(x('iq', { type: 'set', id: 'd' }, fields('second', 'pw')), '127.0.0.1'))[0]!.attrs.type).toBe('result');
      } finally {
        spy.mockRestore();
      }
    });

    it('stops answering when unloaded', async () => {
      await host.core.modules.unload('register');
      expect(host.core.router.hasPreAuthIq('get', NS_REGISTER, 'query')).toBe(false);
      expect((await preauth(x('iq', { type: 'get', id: 'reg1' }, query())))[0]!.getChild('error')!.getChild('service-unavailable', NS_STANZAS)).toBeDefined();
    });
  });

  describe('an authenticated user', () => {
    beforeEach(async () => {
      host = await createTestHost({ modules: [register] });
    });

    it('is told it is registered, with its username', async () => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'get', id: 'reg1' }, query()));
      await alice.receive(x('iq', { type: 'get', id: 'reg2', to: 'example.test' }, query()));
      const form = query(
        x('registered'),
        x('instructions', null, 'You are registered. Send a new password to change it, or <remove/> to delete the account.'),
        x('username', null, 'alice'),
        x('password'));
      expect(alice.take()).toEqual([
        x('iq', { type: 'result', id: 'reg1', to: ME }, form),
        x('iq', { type: 'result', id: 'reg2', to: ME, from: 'example.test' }, form),
      ]);
    });

    it('changes the password (example 18, addressed to the server)', async () => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1', to: 'example.test' }, fields('alice', 'newpass')));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'change1', to: ME, from: 'example.test' })]);
      expect(await passwordWorks('alice@example.test', 'newpass')).toBe(true);
      expect(await passwordWorks('alice@example.test', 'secret')).toBe(false);
    });

    it('accepts the username as a bare JID', async () => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, fields('Alice@example.test', 'newpass')));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'change1', to: ME })]);
      expect(await passwordWorks('alice@example.test', 'newpass')).toBe(true);
    });

    it('refuses to change another account\'s password with forbidden', async () => {
      const alice = await host.connect(ME);
      await host.core.createUser('bob@example.test', 'bobpass');
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, fields('bob', 'owned')));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'change1', from: 'example.test', to: ME }, stanzaError('forbidden', 'auth', 'Only your own password can be changed')),
      ]);
      expect(await passwordWorks('bob@example.test', 'bobpass')).toBe(true);
    });

    it.each([
      ['an empty password', fields('alice', '')],
      ['no password', fields('alice')],
      ['no username', fields(undefined, 'newpass')],
      ['an empty query', query()],
    ])('refuses %s with bad-request and keeps the password', async (_, q) => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, q));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'change1', from: 'example.test', to: ME }, stanzaError('bad-request', 'modify', 'A username and a new password are required')),
      ]);
      expect(await passwordWorks('alice@example.test', 'secret')).toBe(true);
    });

    it('refuses password changes with not-allowed when they are disabled', async () => {
      await host.close();
      host = await createTestHost({ modules: [register], options: { register: { allowPasswordChange: false } } });
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, fields('alice', 'newpass')));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'change1', from: 'example.test', to: ME }, stanzaError('not-allowed', 'cancel', 'Password changes are disabled on this server')),
      ]);
      expect(await passwordWorks('alice@example.test', 'secret')).toBe(true);
    });

    it('refuses a too short new password with not-acceptable', async () => {
      await host.close();
      host = await createTestHost({ modules: [register], options: { register: { minPasswordLength: 10 } } });
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'change1' }, fields('alice', 'short')));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'change1', from: 'example.test', to: ME }, stanzaError('not-acceptable', 'modify', 'The password must have at least 10 characters')),
      ]);
    });

    it('cancels the registration: the result arrives, then every stream closes with not-authorized', async () => {
      const alice = await host.connect(ME);
      const tablet = await host.connect('alice@example.test/tablet');
      const deleted: string[] = [];
      host.core.hooks.on('user/deleted', ({ jid }) => void deleted.push(jid.toString()));
      await alice.receive(x('iq', { type: 'set', id: 'unreg1' }, query(x('remove'))));
      for (let i = 0; i < 5; i++) await settle();
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'unreg1', to: ME })]);
      expect(alice.closed).toBe(true);
      expect(alice.closeError?.condition).toBe('not-authorized');
      expect(tablet.closed).toBe(true);
      expect(tablet.closeError?.condition).toBe('not-authorized');
      expect(deleted).toEqual(['alice@example.test']);
      expect(await host.core.accounts.exists('alice@example.test')).toBe(false);
    });

    it('refuses <remove/> with other children with bad-request', async () => {
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'unreg1' }, query(x('remove'), x('username', null, 'alice'))));
      for (let i = 0; i < 5; i++) await settle();
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'unreg1', from: 'example.test', to: ME }, stanzaError('bad-request', 'modify', '<remove/> must be the only child of the query')),
      ]);
      expect(alice.closed).toBe(false);
      expect(await host.core.accounts.exists('alice@example.test')).toBe(true);
    });

    it('refuses <remove/> with not-allowed when removal is disabled', async () => {
      await host.close();
      host = await createTestHost({ modules: [register], options: { register: { allowRemove: false } } });
      const alice = await host.connect(ME);
      await alice.receive(x('iq', { type: 'set', id: 'unreg1' }, query(x('remove'))));
      for (let i = 0; i < 5; i++) await settle();
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'unreg1', from: 'example.test', to: ME }, stanzaError('not-allowed', 'cancel', 'Accounts cannot be removed in-band on this server')),
      ]);
      expect(await host.core.accounts.exists('alice@example.test')).toBe(true);
    });

    it('does not offer registration to a remote entity addressing the server', async () => {
      const remote: Element[] = [];
      host.core.router.registerDomain('remote.test', (s) => void remote.push(s));
      await host.core.router.route(x('iq', { type: 'get', id: 'r1', from: 'eve@remote.test/x', to: 'example.test' }, query()));
      expect(remote).toEqual([
        x('iq', { type: 'error', id: 'r1', from: 'example.test', to: 'eve@remote.test/x' }, stanzaError('service-unavailable', 'cancel')),
      ]);
    });

    it('stops answering when unloaded', async () => {
      const alice = await host.connect(ME);
      await host.core.modules.unload('register');
      await alice.receive(x('iq', { type: 'get', id: 'reg1' }, query()));
      expect(alice.take()).toEqual([
        x('iq', { type: 'error', id: 'reg1', from: 'example.test', to: ME }, stanzaError('service-unavailable', 'cancel')),
      ]);
    });
  });
});
