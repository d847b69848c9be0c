import type { Logger } from 'pino';
import type { Element } from './xml/element';
import type { HookBus, HookMap, HookName, HookHandler } from './hooks';
import type { LocalRouter } from './router';
import type { SessionRegistry } from './sessions';
import type { AccountStore } from './storage/accounts';
import type { Database } from './storage/database';
import { migrate } from './storage/migrate';
import { ConfigError } from './config';
import type { IqHandler, IqScope, ModuleApi, ServiceMap, UserAdmin, XmppModule } from './module';

interface Loaded {
  mod: XmppModule;
  undo: (() => void)[];
  streamFeatures: readonly Element[];
}

export interface ModuleHostDeps {
  db: Database;
  hooks: HookBus;
  router: LocalRouter;
  sessions: SessionRegistry;
  accounts: AccountStore;
  users: UserAdmin;
  domains: readonly string[];
  log: Logger;
}

/** Loads modules: checks dependencies, runs their migrations, gives each a scoped API whose registrations unload undoes. */
export class ModuleHost {
  private readonly loaded = new Map<string, Loaded>();
  private readonly services = new Map<string, unknown>();

  constructor(private readonly deps: ModuleHostDeps) {}

  has(name: string): boolean {
    return this.loaded.has(name);
  }

  names(): string[] {
    return [...this.loaded.keys()];
  }

  features(): string[] {
    const out = new Set<string>();
    for (const { mod } of this.loaded.values()) for (const f of mod.features ?? []) out.add(f);
    return [...out].sort();
  }

  /** A service a loaded module provides (for the admin commands), or undefined. */
  service<K extends keyof ServiceMap>(name: K): ServiceMap[K] | undefined {
    return this.services.get(name as string) as ServiceMap[K] | undefined;
  }

  /** Post-authentication stream features declared by loaded modules. */
  streamFeatures(): Element[] {
    const out: Element[] = [];
    for (const { streamFeatures } of this.loaded.values()) out.push(...streamFeatures);
    return out;
  }

  async load(mod: XmppModule, options: Record<string, unknown> = {}): Promise<void> {
    if (this.loaded.has(mod.name)) throw new Error(`module ${mod.name} is already loaded`);
    for (const dep of mod.dependencies ?? []) {
      if (!this.loaded.has(dep)) throw new Error(`module ${mod.name} needs module ${dep}, which is not loaded`);
    }
    const { db, hooks, router, sessions, accounts, users, domains, log } = this.deps;
    try {
      migrate(db, mod.name, mod.migrations ?? []);
    } catch (err) {
      throw new Error(`module ${mod.name}: migration failed: ${(err as Error).message}`);
    }
    checkOptions(mod, options);
    const undo: (() => void)[] = [];
    const merged = { ...(mod.defaults ?? {}), ...options };
    const api: ModuleApi<any> = {
      name: mod.name,
      domains,
      isLocalDomain: (d) => router.isLocalDomain(d),
      options: Object.freeze(merged),
      log: log.child({ module: mod.name }),
      db,
      accounts,
      users,
      sessions,
      iq: (type: 'get' | 'set', xmlns: string, name: string, handler: IqHandler, scope: IqScope = 'host') => {
        undo.push(router.registerIq(type, xmlns, name, scope, handler, mod.name));
      },
      hook: <K extends HookName>(name: K, handler: HookHandler<K>, priority?: number) => {
        undo.push(hooks.on(name, handler, priority, mod.name));
      },
      fire: <K extends HookName>(name: K, payload: HookMap[K]) =>
        hooks.fire(name, payload, (err, owner) => log.error({ err, module: owner }, 'hook handler failed')),
      serveDomain: (domain: string, handler: (stanza: Element) => void | Promise<void>) => {
        undo.push(router.registerDomain(domain, handler));
      },
      route: (stanza: Element) => router.route(stanza),
      provide: <K extends keyof ServiceMap>(name: K, impl: ServiceMap[K]) => {
        if (this.services.has(name as string)) throw new Error(`service ${String(name)} is already provided`);
        this.services.set(name as string, impl);
        undo.push(() => this.services.delete(name as string));
      },
      service: <K extends keyof ServiceMap>(name: K) => this.services.get(name as string) as ServiceMap[K] | undefined,
      features: () => this.features(),
      every: (ms: number, fn: () => void | Promise<void>) => {
        const t = setInterval(() => {
          Promise.resolve()
            .then(fn)
            .catch((err) => log.error({ err, module: mod.name }, 'periodic task failed'));
        }, ms);
        t.unref();
        undo.push(() => clearInterval(t));
      },
    };
    try {
      await mod.setup(api);
    } catch (err) {
      for (const u of undo.reverse()) u();
      throw new Error(`module ${mod.name}: setup failed: ${(err as Error).message}`);
    }
    const features = typeof mod.streamFeatures === 'function' ? mod.streamFeatures(merged) : mod.streamFeatures ?? [];
    this.loaded.set(mod.name, { mod, undo, streamFeatures: features });
  }

  async unload(name: string): Promise<void> {
    const entry = this.loaded.get(name);
    if (!entry) return;
    for (const other of this.loaded.values()) {
      if (other.mod.dependencies?.includes(name)) throw new Error(`module ${name} is needed by ${other.mod.name}`);
    }
    for (const u of entry.undo.reverse()) u();
    await entry.mod.teardown?.();
    this.loaded.delete(name);
  }

  async unloadAll(): Promise<void> {
    for (const name of [...this.loaded.keys()].reverse()) await this.unload(name);
  }
}

/**
 * A module's options must be among its declared defaults and of the same type, so a typo
 * in the config file is an error that names the setting instead of being ignored.
 */
function checkOptions(mod: XmppModule, options: Record<string, unknown>): void {
  const defaults = (mod.defaults ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(options)) {
    if (!(key in defaults)) {
      const known = Object.keys(defaults);
      throw new ConfigError(`"modules.${mod.name}.${key}" is not a setting of module ${mod.name}` +
        (known.length > 0 ? ` (it has: ${known.join(', ')})` : ' (it has none)'));
    }
    const expected = defaults[key];
    if (expected !== undefined && expected !== null && typeof value !== typeof expected) {
      throw new ConfigError(`"modules.${mod.name}.${key}" must be a ${typeof expected}, got ${JSON.stringify(value)}`);
    }
  }
}
