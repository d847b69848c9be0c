import type { Logger } from 'pino';
import { HookBus } from './hooks';
import { LocalSessionRegistry } from './sessions';
import { LocalRouter } from './router';
import { ModuleHost } from './module-host';
import { openDatabase, type Database } from './storage/database';
import { SqliteAccountStore, type AccountStore } from './storage/accounts';
import type { UserAdmin, XmppModule } from './module';
import type { Session } from './session';
import { Jid } from './jid';
import { StreamError } from './errors';
import { deriveScramCredentials, type ScramCredentials, type ScramHash } from './sasl';
import { preparePassword } from './precis';

export interface CoreOptions {
  domains: readonly string[];
  /** Guest domains (SASL ANONYMOUS): routable like hosted ones, but without accounts. */
  anonymousDomains?: readonly string[];
  /** SQLite file path, or ':memory:'. */
  database: string;
  log: Logger;
  /** Modules to load, in order, with their options. */
  modules: readonly { module: XmppModule; options?: Record<string, unknown> }[];
  /** What binding a resource that is already bound does: replace the old session (default) or refuse the new one. */
  resourceConflict?: 'replace' | 'refuse';
}

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * Everything but the network: storage, hooks, sessions, router and modules. The server
 * puts listeners in front of it; the CLI uses it directly when no server is running.
 */
export class Core implements UserAdmin {
  readonly hooks = new HookBus();
  readonly sessions = new LocalSessionRegistry();
  readonly router: LocalRouter;
  readonly modules: ModuleHost;
  readonly accounts: AccountStore;
  readonly domains: readonly string[];
  readonly anonymousDomains: ReadonlySet<string>;
  readonly resourceConflict: 'replace' | 'refuse';
  /**
   * Sessions that may be resumed (XEP-0198), by stream management id: connected ones, and
   * ones whose connection dropped and that wait for their client within the resume timeout.
   */
  readonly resumable = new Map<string, Session>();

  private constructor(readonly db: Database, readonly log: Logger, opts: CoreOptions) {
    this.domains = opts.domains;
    this.anonymousDomains = new Set(opts.anonymousDomains ?? []);
    this.resourceConflict = opts.resourceConflict ?? 'replace';
    this.accounts = new SqliteAccountStore(db);
    this.router = new LocalRouter({
      hooks: this.hooks, sessions: this.sessions, accounts: this.accounts, domains: [...this.domains, ...this.anonymousDomains], log,
    });
    this.modules = new ModuleHost({
      db, hooks: this.hooks, router: this.router, sessions: this.sessions, accounts: this.accounts, users: this, domains: this.domains, log,
    });
  }

  static async create(opts: CoreOptions): Promise<Core> {
    const db = openDatabase(opts.database);
    const core = new Core(db, opts.log, opts);
    try {
      for (const { module, options } of opts.modules) await core.modules.load(module, options);
    } catch (err) {
      db.close();
      throw err;
    }
    return core;
  }

  isLocalDomain(domain: string): boolean {
    return this.router.isLocalDomain(domain);
  }

  /**
   * Makes a session reachable. With resourceConflict 'replace' an existing session with the
   * same full JID is closed with a <conflict/> stream error; with 'refuse' false is returned.
   */
  async bind(session: Session): Promise<boolean> {
    const existing = this.sessions.get(session.jid);
    if (existing && this.resourceConflict === 'refuse') return false;
    const displaced = this.sessions.add(session);
    if (displaced) {
      displaced.close(new StreamError('conflict', 'Replaced by a new session with the same resource'));
      await this.hooks.fire('session/closed', { session: displaced }, this.onHookError);
    }
    await this.hooks.fire('session/bound', { session }, this.onHookError);
    return true;
  }

  private readonly ending = new Set<Promise<void>>();

  /** Tracks work a session does on its way out (stored messages), so shutdown can wait for it. */
  track(work: Promise<void>): void {
    this.ending.add(work);
    void work.finally(() => this.ending.delete(work));
  }

  /**
   * Ends every session still bound (including ones waiting for a stream management
   * resumption) and waits until what they had queued is delivered or stored.
   */
  async closeSessions(error: StreamError): Promise<void> {
    for (const s of [...this.sessions.all()]) s.close(error);
    for (const s of [...this.sessions.all()]) await this.unbind(s, error);
    while (this.ending.size > 0) await Promise.all([...this.ending]);
  }

  /** Called once when a bound session ends, whatever the reason. */
  async unbind(session: Session, error?: StreamError): Promise<void> {
    if (this.sessions.get(session.jid) !== session) return; // already replaced
    this.sessions.remove(session);
    await this.hooks.fire('session/closed', { session, error }, this.onHookError);
    // A guest's address is used once: what modules stored for it goes with the session.
    if (this.anonymousDomains.has(session.jid.domain) && this.sessions.ofAccount(session.jid.bareString).length === 0) {
      await this.hooks.fire('user/deleted', { jid: session.jid.bare() }, this.onHookError);
    }
  }

  isAnonymousDomain(domain: string): boolean {
    return this.anonymousDomains.has(domain);
  }

  // ---- accounts -------------------------------------------------------------

  /** Parses and checks a bare account JID on a hosted domain; throws UserError saying what is wrong. */
  accountJid(input: string): Jid {
    let jid: Jid;
    try {
      jid = Jid.parse(input);
    } catch (err) {
      throw new UserError(`"${input}" is not a valid JID: ${(err as Error).message}`);
    }
    if (jid.local === '' || jid.resource !== '') throw new UserError(`"${input}" is not an account JID: use the form user@domain`);
    if (!this.domains.includes(jid.domain)) {
      throw new UserError(`${jid.domain} is not a domain of this server (configured: ${this.domains.join(', ')})`);
    }
    return jid;
  }

  async createUser(input: string, password: string): Promise<Jid> {
    const jid = this.accountJid(input);
    const creds = credentialsFor(password);
    if (!(await this.accounts.create(jid.bareString, creds))) throw new UserError(`user ${jid} already exists`);
    await this.hooks.fire('user/created', { jid }, this.onHookError);
    return jid;
  }

  async setPassword(input: string, password: string): Promise<Jid> {
    const jid = this.accountJid(input);
    const creds = credentialsFor(password);
    if (!(await this.accounts.setCredentials(jid.bareString, creds))) throw new UserError(`user ${jid} does not exist`);
    return jid;
  }

  /** Account JIDs, sorted; of one hosted domain when given. */
  async listUsers(domain?: string): Promise<string[]> {
    if (domain !== undefined && !this.domains.includes(domain)) {
      throw new UserError(`${domain} is not a domain of this server (configured: ${this.domains.join(', ')})`);
    }
    return this.accounts.list(domain);
  }

  async deleteUser(input: string): Promise<Jid> {
    const jid = this.accountJid(input);
    if (!(await this.accounts.exists(jid.bareString))) throw new UserError(`user ${jid} does not exist`);
    // Sessions end first, so that no session/closed handler writes data back after user/deleted.
    for (const s of [...this.sessions.ofAccount(jid.bareString)]) {
      const err = new StreamError('not-authorized', 'Account deleted');
      s.close(err);
      await this.unbind(s, err);
    }
    await this.hooks.fire('user/deleted', { jid }, this.onHookError);
    await this.accounts.delete(jid.bareString);
    return jid;
  }

  async close(): Promise<void> {
    await this.modules.unloadAll();
    this.db.close();
  }

  private readonly onHookError = (err: unknown, owner: string) => this.log.error({ err, module: owner }, 'hook handler failed');
}

/** SCRAM keys for both hashes from one password; throws UserError for an unusable password. */
export function credentialsFor(password: string): Map<ScramHash, ScramCredentials> {
  if (password.length === 0) throw new UserError('the password is empty');
  try {
    preparePassword(password);
  } catch (err) {
    throw new UserError(`the password is not usable: ${(err as Error).message}`);
  }
  return new Map<ScramHash, ScramCredentials>([
    ['sha1', deriveScramCredentials('sha1', password)],
    ['sha256', deriveScramCredentials('sha256', password)],
  ]);
}
