import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { Core } from './core';
import { ConfigError, type Config } from './config';
import { StreamError } from './errors';
import { C2sListener, ClientConnections } from './net/c2s-listener';
import { HttpListener, BOSH_PATH } from './net/http-listener';
import { BoshService } from './net/bosh';
import { serveChatPage } from './net/chat-page';
import { AuthThrottle } from './stream/auth-throttle';
import { loadTlsMaterial } from './tls';
import { AdminServer } from './admin/admin-server';
import { IdleTrim } from './idle-trim';
import type { XmppModule } from './module';
import { BUILTIN_MODULES } from '../modules';

export type ListenerName = 'c2s' | 'c2sTls' | 'http' | 'https';
/** Every listener, in the order `xmppd status` lists their ports. */
export const LISTENER_NAMES: readonly ListenerName[] = ['c2s', 'c2sTls', 'http', 'https'];

/** Resolves which built-in modules to load and with what options; unknown names are config errors. */
export function selectModules(config: Config, available: readonly XmppModule[] = BUILTIN_MODULES): { module: XmppModule; options?: Record<string, unknown> }[] {
  const names = new Set(available.map((m) => m.name));
  for (const name of Object.keys(config.modules)) {
    if (!names.has(name)) throw new ConfigError(`modules: "${name}" is not a module of this server (available: ${[...names].join(', ')})`);
  }
  const out: { module: XmppModule; options?: Record<string, unknown> }[] = [];
  for (const m of available) {
    const opts = config.modules[m.name];
    if (opts === false) continue;
    out.push({ module: m, options: opts });
  }
  return out;
}

export function databasePath(config: Config): string {
  return join(config.dataDir, 'xmppd.sqlite');
}

export function adminSocketPath(config: Config): string {
  return join(config.dataDir, 'xmppd.sock');
}

/** The running server: the core plus its listeners and the admin socket. */
export class XmppServer {
  private readonly ports = new Map<ListenerName, number>();
  private readonly listeners: C2sListener[] = [];
  private connections: ClientConnections | undefined;
  private admin: AdminServer | undefined;
  private httpListener: HttpListener | undefined;
  private bosh: BoshService | undefined;
  private stopping: Promise<void> | undefined;
  readonly startedAt = Date.now();
  private readonly idleTrim: IdleTrim;

  private constructor(readonly core: Core, readonly config: Config, readonly log: Logger) {
    this.idleTrim = new IdleTrim((freedMiB) => log.debug({ freedMiB: Math.round(freedMiB) }, 'quiet: gave back the young generation'));
  }

  static async start(config: Config, log: Logger): Promise<XmppServer> {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const tls = await loadTlsMaterial(config, log);
    const core = await Core.create({
      domains: config.domains,
      anonymousDomains: config.anonymousDomains,
      database: databasePath(config),
      log,
      modules: selectModules(config),
      resourceConflict: config.sessions.resourceConflict,
    });
    const server = new XmppServer(core, config, log);
    try {
      if (!config.c2s.requireTls) {
        log.warn('c2s.requireTls is false: clients may log in without TLS. Use this only on loopback, for tests and benchmarks');
      }
      const throttle = new AuthThrottle(config.auth.failureDelayMs, config.auth.maxFailureDelayMs);
      const session = {
        requireTls: config.c2s.requireTls,
        authTimeoutMs: config.limits.authTimeout * 1000,
        idleTimeoutMs: config.limits.idleTimeout * 1000,
        resumeTimeoutMs: config.sessions.resumeTimeout * 1000,
        stanzasPerSecond: config.limits.stanzasPerSecond,
        stanzaBurst: config.limits.stanzaBurst,
        throttle,
      };
      const parserLimits = {
        maxStanzaBytes: config.limits.maxStanzaBytes,
        maxDepth: config.limits.maxDepth,
        maxAttributes: config.limits.maxAttributes,
      };
      const connections = new ClientConnections({
        maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
        maxConnections: config.limits.maxConnections,
        authTimeoutMs: session.authTimeoutMs,
      }, log);
      server.connections = connections;
      const common = {
        ...session,
        host: config.c2s.host,
        secureContext: tls.context,
        tls: { key: tls.key, cert: tls.cert },
        parserLimits,
        shaper: { bytesPerSecond: config.limits.bytesPerSecond, burstBytes: config.limits.burstBytes },
      };
      if (config.c2s.port !== null) {
        const l = new C2sListener(core, { ...common, port: config.c2s.port, directTls: false }, connections, log);
        server.listeners.push(l);
        server.ports.set('c2s', await l.listen());
      }
      if (config.c2s.tlsPort !== null) {
        const l = new C2sListener(core, { ...common, port: config.c2s.tlsPort, directTls: true }, connections, log);
        server.listeners.push(l);
        server.ports.set('c2sTls', await l.listen());
      }
      if (config.http.port !== null || config.http.tlsPort !== null) {
        const http = new HttpListener(core, {
          ...config.http,
          tls: { key: tls.key, cert: tls.cert },
          session,
          parserLimits,
          startedAt: server.startedAt,
        }, connections, log);
        server.httpListener = http;
        // BOSH (XEP-0206) sessions share the listeners' per-address limit and timers.
        const bosh = new BoshService(core, session, {
          allowedOrigins: config.http.allowedOrigins,
          parserLimits,
          admit: (s, address) => connections.admit(s, address),
        }, log);
        server.bosh = bosh;
        http.addRoute(BOSH_PATH, (req, res, ctx) => bosh.handle(req, res, { address: ctx.client.address, secure: ctx.client.secure }));
        if (config.http.chatPath !== null) {
          const register = config.modules.register;
          serveChatPage(http, {
            path: config.http.chatPath,
            domains: config.domains,
            allowRegistration: register !== false && register?.allowRegistration === true,
          });
        }
        for (const [name, port] of await http.listen()) server.ports.set(name, port);
      }
      server.admin = new AdminServer(server, adminSocketPath(config), log);
      await server.admin.listen();
    } catch (err) {
      await server.stop();
      throw err;
    }
    server.idleTrim.start();
    log.info({ domains: config.domains, dataDir: config.dataDir }, 'xmppd started');
    return server;
  }

  /** The web listener (WebSocket, host-meta, health) when http.port or http.tlsPort is on; BOSH and the web chat add their routes to it. */
  get http(): HttpListener | undefined {
    return this.httpListener;
  }

  port(name: ListenerName): number {
    const p = this.ports.get(name);
    if (p === undefined) throw new Error(`listener ${name} is not running`);
    return p;
  }

  /** Open client connections on every listener (TCP and WebSocket). */
  get connectionCount(): number {
    return this.listeners.reduce((n, l) => n + l.connectionCount, 0) + (this.http?.connectionCount ?? 0) + (this.bosh?.connectionCount ?? 0);
  }

  /**
   * Graceful shutdown: stop accepting, send <system-shutdown/> to every client (whose
   * sessions then end through the normal path), and close the database last.
   */
  stop(): Promise<void> {
    // Load balancers see /health go 503 from the first moment.
    this.httpListener?.beginShutdown();
    this.stopping ??= (async () => {
      this.idleTrim.stop();
      await this.admin?.close();
      const error = new StreamError('system-shutdown', 'The server is shutting down');
      // Stop accepting everywhere, end every session (TCP and WebSocket alike), then wait for the sockets.
      const closing = Promise.all([...this.listeners.map((l) => l.close()), this.http?.close()]);
      await this.connections?.closeAll(error);
      await this.bosh?.close(error);
      await closing;
      await this.core.closeSessions(error);
      await this.core.close();
      this.log.info('xmppd stopped');
    })();
    return this.stopping;
  }
}
