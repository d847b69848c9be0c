// XEP-0077: In-Band Registration (jabber:iq:register): account creation before authentication,
// password change and account removal after it.
import { defineModule, Jid, StanzaError, UserError, x, type Element, type IqRequest, type ModuleApi } from '../../src';

export const NS_REGISTER = 'jabber:iq:register';
/** The stream feature the core offers when a 'preauth' get handler exists (XEP-0077 "Stream Feature"). */
export const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';

export interface RegisterOptions {
  /** Let unauthenticated clients create accounts. Off by default: a public server must opt in. */
  allowRegistration: boolean;
  /** Shortest password accepted for a new account or a password change, in characters. */
  minPasswordLength: number;
  /** Accounts one network address may create per `registrationWindowSeconds`; 0 for no limit. */
  registrationsPerAddress: number;
  registrationWindowSeconds: number;
  /** Addresses the limit does not apply to (Prosody's registration_whitelist has the same default). */
  throttleExempt: string[];
  /** XEP-0077 §3.3: "A given deployment MAY choose ... to disable in-band password changes". */
  allowPasswordChange: boolean;
  /** XEP-0077 §3.2: cancelling a registration in-band; <not-allowed/> when off. */
  allowRemove: boolean;
  /** Text of the <instructions/> element of the registration form. */
  instructions: string;
}

export default defineModule<RegisterOptions>({
  name: 'register',
  features: [NS_REGISTER],
  defaults: {
    allowRegistration: false,
    minPasswordLength: 1,
    registrationsPerAddress: 3,
    registrationWindowSeconds: 600,
    throttleExempt: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
    allowPasswordChange: true,
    allowRemove: true,
    instructions: 'Choose a username and password to register with this server.',
  },
  setup(api) {
    const opts = api.options;
    const throttle = new Throttle(opts.registrationsPerAddress, opts.registrationWindowSeconds * 1000, opts.throttleExempt);

    if (opts.allowRegistration) {
      // Only registered when registration is on: the core offers the iq-register stream feature
      // exactly when a 'preauth' get handler exists, and without one the router answers
      // service-unavailable, which is what §3.1 requires from a host without registration.
      api.iq('get', NS_REGISTER, 'query', () =>
        x('query', { xmlns: NS_REGISTER }, x('instructions', null, opts.instructions), x('username'), x('password')), 'preauth');
      api.iq('set', NS_REGISTER, 'query', (req) => register(api, throttle, req), 'preauth');
      if (opts.registrationsPerAddress > 0) api.every(opts.registrationWindowSeconds * 1000, () => throttle.prune());
    }

    // Authenticated: the IQ has no 'to', or is addressed to one's own bare JID ('self') or to the
    // server (XEP-0077's password change example has to='shakespeare.lit'; 'host').
    const get = (req: IqRequest): Element => {
      const account = registeredAccount(api, req);
      return x('query', { xmlns: NS_REGISTER },
        x('registered'),
        x('instructions', null, 'You are registered. Send a new password to change it, or <remove/> to delete the account.'),
        x('username', null, account.local),
        x('password'));
    };
    const set = (req: IqRequest): Promise<void> | void => {
      const account = registeredAccount(api, req);
      if (req.payload.getChild('remove') !== undefined) return remove(api, account, req.payload);
      return changePassword(api, account, req.payload);
    };
    api.iq('get', NS_REGISTER, 'query', get, 'self');
    api.iq('set', NS_REGISTER, 'query', set, 'self');
    api.iq('get', NS_REGISTER, 'query', get, 'host');
    api.iq('set', NS_REGISTER, 'query', set, 'host');
  },
});

/** The local account an authenticated request speaks for. */
function registeredAccount(api: ModuleApi<RegisterOptions>, { from }: IqRequest): Jid {
  // A remote entity (or the server itself) asking the server: registration is not offered to them.
  if (from.local === '' || !api.isLocalDomain(from.domain)) throw new StanzaError('service-unavailable');
  return from.bare();
}

/** §3.1: account creation on an unauthenticated stream. */
async function register(api: ModuleApi<RegisterOptions>, throttle: Throttle, req: IqRequest): Promise<void> {
  const { payload, to } = req;
  // §3.2 table: <unexpected-request/> when "the entity is not registered with the server".
  if (payload.getChild('remove') !== undefined) throw new StanzaError('unexpected-request', 'Authenticate before cancelling a registration');
  const username = payload.getChildText('username');
  const password = payload.getChildText('password');
  // "If the requesting entity does not provide all of the requested information (this includes
  // providing an empty password element ...) the server MUST return a <not-acceptable/> error."
  if (!username || !password) throw new StanzaError('not-acceptable', 'A username and a password are required');
  const jid = accountJid(username, to.domain);
  checkPassword(api, password);
  const address = req.remoteAddress ?? 'unknown';
  // Reserved before the account is created, so that parallel attempts cannot overshoot.
  const release = throttle.reserve(address);
  if (release === undefined) {
    throw new StanzaError('policy-violation', 'Too many accounts were registered from this address recently; try again later', 'wait');
  }
  try {
    if (await api.accounts.exists(jid.bareString)) throw new StanzaError('conflict', 'That username is taken');
    try {
      await api.users.createUser(jid.bareString, password);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      // Lost a race with another registration of the same name, or a password PRECIS rejects.
      if (await api.accounts.exists(jid.bareString)) throw new StanzaError('conflict', 'That username is taken');
      throw new StanzaError('not-acceptable', err.message);
    }
  } catch (err) {
    release();
    throw err;
  }
  api.log.info({ jid: jid.bareString, address }, 'account registered in-band');
}

/** §3.3: password change. The <username/> must be the account's own. */
async function changePassword(api: ModuleApi<RegisterOptions>, account: Jid, query: Element): Promise<void> {
  if (!api.options.allowPasswordChange) throw new StanzaError('not-allowed', 'Password changes are disabled on this server');
  const username = query.getChildText('username');
  const password = query.getChildText('password');
  // §3.3: an empty password "MUST NOT change the password ... but instead MUST maintain the
  // existing password"; the table's <bad-request/> covers incomplete requests.
  if (!username || !password) throw new StanzaError('bad-request', 'A username and a new password are required');
  if (!sameAccount(username, account)) throw new StanzaError('forbidden', 'Only your own password can be changed');
  checkPassword(api, password);
  try {
    await api.users.setPassword(account.bareString, password);
  } catch (err) {
    if (err instanceof UserError) throw new StanzaError('not-acceptable', err.message);
    throw err;
  }
  api.log.info({ jid: account.bareString }, 'password changed in-band');
}

/**
 * §3.2: cancellation. The result must reach the client before deleteUser closes its streams
 * (with the <not-authorized/> stream error §3.2 asks for), so the deletion runs after the
 * router has queued the reply to this handler's return.
 */
function remove(api: ModuleApi<RegisterOptions>, account: Jid, query: Element): void {
  if (query.elements.length !== 1) throw new StanzaError('bad-request', '<remove/> must be the only child of the query');
  if (!api.options.allowRemove) throw new StanzaError('not-allowed', 'Accounts cannot be removed in-band on this server');
  setImmediate(() => {
    api.users.deleteUser(account.bareString).then(
      () => api.log.info({ jid: account.bareString }, 'account removed in-band'),
      (err: unknown) => {
        if (err instanceof UserError) api.log.debug({ jid: account.bareString, err }, 'account already removed');
        else api.log.error({ jid: account.bareString, err }, 'in-band account removal failed');
      },
    );
  });
}

/** The account a requested username names; <jid-malformed/> when it cannot be a localpart. */
function accountJid(username: string, domain: string): Jid {
  if (/[@/]/.test(username)) throw new StanzaError('jid-malformed', 'A username cannot contain @ or /');
  const jid = Jid.tryParse(`${username}@${domain}`);
  if (jid === undefined || jid.local === '' || jid.resource !== '') throw new StanzaError('jid-malformed', 'That username is not allowed in an XMPP address');
  return jid;
}

/** The password change example gives the localpart; a bare JID is accepted too (data forms use one). */
function sameAccount(username: string, account: Jid): boolean {
  const jid = Jid.tryParse(username.includes('@') ? username : `${username}@${account.domain}`);
  return jid !== undefined && jid.resource === '' && jid.bareString === account.bareString;
}

function checkPassword(api: ModuleApi<RegisterOptions>, password: string): void {
  const min = api.options.minPasswordLength;
  if ([...password].length < min) throw new StanzaError('not-acceptable', `The password must have at least ${min} characters`);
}

/** Successful registrations per network address in a sliding window. */
class Throttle {
  private readonly recent = new Map<string, number[]>();
  private readonly exempt: ReadonlySet<string>;

  constructor(private readonly max: number, private readonly windowMs: number, exempt: readonly string[]) {
    this.exempt = new Set(exempt);
  }

  /** Counts a registration from `address`; undefined when over the limit, else a function that takes it back. */
  reserve(address: string): (() => void) | undefined {
    if (this.max <= 0 || this.exempt.has(address)) return () => undefined;
    const times = this.live(address);
    if (times.length >= this.max) return undefined;
    const at = Date.now();
    times.push(at);
    this.recent.set(address, times);
    return () => {
      const list = this.recent.get(address);
      const i = list?.indexOf(at) ?? -1;
      if (list !== undefined && i !== -1) list.splice(i, 1);
    };
  }

  /** Forgets addresses with no registration inside the window. */
  prune(): void {
    for (const address of [...this.recent.keys()]) if (this.live(address).length === 0) this.recent.delete(address);
  }

  private live(address: string): number[] {
    const since = Date.now() - this.windowMs;
    const times = (this.recent.get(address) ?? []).filter((t) => t > since);
    if (times.length > 0) this.recent.set(address, times);
    return times;
  }
}
