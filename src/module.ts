import type { Logger } from 'pino';
import type { Element } from './xml/element';
import type { Jid } from './jid';
import type { Session } from './session';
import type { SessionRegistry } from './sessions';
import type { HookHandler, HookMap, HookName } from './hooks';
import type { Database } from './storage/database';
import type { Migration } from './storage/migrate';
import type { AccountStore } from './storage/accounts';

/** An IQ get/set as a handler sees it. */
export interface IqRequest {
  readonly stanza: Element;
  /** The single child element. */
  readonly payload: Element;
  readonly type: 'get' | 'set';
  /** Stamped by the server: the sender's full JID (or a server/module address). */
  readonly from: Jid;
  /** The addressee: the server domain, or an account's bare JID (the sender's own when 'to' was absent). */
  readonly to: Jid;
  /** The sender's session when it is a local client. */
  readonly session: Session | undefined;
  /** The client's network address, for pre-authentication IQs (scope 'preauth'). */
  readonly remoteAddress?: string;
}

/** Return the result payload (or nothing for an empty result); throw StanzaError to fail. */
export type IqHandler = (req: IqRequest) => Element | void | Promise<Element | void>;

/**
 * Who an IQ handler answers for:
 * - 'host': IQs to the server domain (disco, ping, version ...).
 * - 'self': IQs to the sender's own bare JID or with no 'to' (roster, private storage, blocking).
 * - 'account': IQs to any local account's bare JID, including one's own (vCard of a contact, last activity).
 * - 'preauth': IQs on a stream that has not authenticated yet (only XEP-0077 registration);
 *   `from` is then the server domain and `session` is undefined.
 */
export type IqScope = 'host' | 'self' | 'account' | 'preauth';

/**
 * Services modules offer each other (e.g. the roster for presence), added by declaration
 * merging: `declare module '../../src/module' { interface ServiceMap { roster: RosterService } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ServiceMap {}

/** Account administration with the same checks and hooks as the CLI (user/created, user/deleted). */
export interface UserAdmin {
  /** Throws UserError (message says what is wrong) for a bad JID, foreign domain, existing user or empty password. */
  createUser(bareJid: string, password: string): Promise<Jid>;
  setPassword(bareJid: string, password: string): Promise<Jid>;
  /** Closes the account's sessions, fires user/deleted, removes the account. */
  deleteUser(bareJid: string): Promise<Jid>;
}

export interface ModuleApi<Options = Record<string, never>> {
  readonly name: string;
  /** The domains this server hosts; the first is the default. */
  readonly domains: readonly string[];
  isLocalDomain(domain: string): boolean;
  readonly options: Readonly<Options>;
  readonly log: Logger;
  /** SQLite handle; this module's migrations have already run. Keep SQL in the module's store.ts. */
  readonly db: Database;
  readonly accounts: AccountStore;
  readonly users: UserAdmin;
  readonly sessions: SessionRegistry;
  iq(type: 'get' | 'set', xmlns: string, name: string, handler: IqHandler, scope?: IqScope): void;
  hook<K extends HookName>(name: K, handler: HookHandler<K>, priority?: number): void;
  /** Fire an event for other modules (e.g. one this module declared). True when claimed. */
  fire<K extends HookName>(name: K, payload: HookMap[K]): Promise<boolean>;
  /**
   * Serve a whole domain (a component such as conference.example.org): every stanza addressed
   * to it or its JIDs comes to `handler`, with 'from' already trusted. Undone on unload.
   */
  serveDomain(domain: string, handler: (stanza: Element) => void | Promise<void>): void;
  /** Deliver a stanza by its 'to' as if it came from its 'from' (which must be set). */
  route(stanza: Element): Promise<void>;
  /** Offer a service to other modules; withdrawn on unload. */
  provide<K extends keyof ServiceMap>(name: K, impl: ServiceMap[K]): void;
  /** A service another module provides, or undefined when that module is not loaded. */
  service<K extends keyof ServiceMap>(name: K): ServiceMap[K] | undefined;
  /** Disco#info features of all loaded modules, for the disco module. */
  features(): string[];
  every(ms: number, fn: () => void | Promise<void>): void;
}

export interface XmppModule<Options = any> {
  readonly name: string;
  /** Disco#info features this module adds to the server's (XEP-0030). */
  readonly features?: readonly string[];
  /** Stream features offered to a client once it has authenticated (e.g. roster versioning); a function when they depend on the options. */
  readonly streamFeatures?: readonly Element[] | OptionsFn<Options, readonly Element[]>;
  /** Modules that must be loaded first. */
  readonly dependencies?: readonly string[];
  /** Merged with the config's `modules.<name>` options. */
  readonly defaults?: Options;
  /** Schema steps for this module's own tables, index + 1 = version. */
  readonly migrations?: readonly Migration[];
  setup(api: ModuleApi<Options>): void | Promise<void>;
  /** Only for resources the api does not track (timers and registrations are undone for you). */
  teardown?(): void | Promise<void>;
}

/** A function of a module's options, declared as a method so module types stay assignable to XmppModule<object>. */
type OptionsFn<Options, R> = { fn(options: Options): R }['fn'];

/** Identity function that gives a module object its type. */
export function defineModule<Options extends object = Record<string, never>>(mod: XmppModule<Options>): XmppModule<Options> {
  return mod;
}
