import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Core } from '../core';
import { StreamError } from '../errors';
import { C2sSession, type C2sOptions } from '../stream/c2s-session';
import { TcpTransport, normaliseAddress } from './tcp-transport';
import type { StreamParserLimits } from '../xml/stream-parser';
import { MIN_TLS } from '../tls';

/** What the connection registry needs of a client session, whatever carries it (TCP, WebSocket, BOSH). */
export interface TrackedSession {
  /** Auth deadline and idle detection, called every few seconds. */
  checkTimers(now: number): void;
  close(error?: StreamError): void;
}

export interface ClientConnectionsOptions {
  maxConnectionsPerAddress: number;
  /** Concurrent connections in total; further ones are ended at once with <resource-constraint/>. */
  maxConnections?: number;
  authTimeoutMs: number;
}

const LOG_EVERY_MS = 60_000;

/**
 * The client connections of every listener (TCP ports and the web listener): one count per
 * address across all of them, one timer driving the sessions' auth and idle timeouts, and
 * one place that ends them all on shutdown.
 */
export class ClientConnections {
  private readonly sessions = new Set<TrackedSession>();
  private readonly perAddress = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  /** When the connection limits were last logged: under a flood, once per LOG_EVERY_MS each. */
  private readonly loggedAt = new Map<string, number>();

  constructor(private readonly opts: ClientConnectionsOptions, private readonly log: Logger) {
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions) s.checkTimers(now);
    }, Math.max(20, Math.min(5000, opts.authTimeoutMs / 2)));
    this.timer.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Tracks a new connection's session until `release` is called (when its socket closes). Over
   * the per-address limit, the session is ended at once with <policy-violation/>.
   */
  admit(session: TrackedSession, address: string): () => void {
    const full = this.opts.maxConnections !== undefined && this.sessions.size >= this.opts.maxConnections;
    const count = (this.perAddress.get(address) ?? 0) + 1;
    this.perAddress.set(address, count);
    this.sessions.add(session);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.sessions.delete(session);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    };
    if (full) {
      // RFC 6120 §4.9.3.17: the server lacks the resources to serve the stream.
      if (this.shouldLog('total')) this.log.warn({ address, limit: this.opts.maxConnections }, 'limits.maxConnections reached: refusing new connections');
      session.close(new StreamError('resource-constraint', 'The server has too many connections; try again later'));
    } else if (count > this.opts.maxConnectionsPerAddress) {
      if (this.shouldLog('address:' + address)) this.log.warn({ address, limit: this.opts.maxConnectionsPerAddress }, 'too many connections from one address');
      session.close(new StreamError('policy-violation', 'Too many connections from your address'));
    }
    return release;
  }

  private shouldLog(key: string): boolean {
    const now = Date.now();
    const last = this.loggedAt.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return false;
    if (this.loggedAt.size > 1000) this.loggedAt.clear();
    this.loggedAt.set(key, now);
    return true;
  }

  /** Ends every session (with `error` when given) and waits up to `graceMs` for their connections to go. */
  async closeAll(error?: StreamError, graceMs = 2000): Promise<void> {
    clearInterval(this.timer);
    for (const s of [...this.sessions]) s.close(error);
    // Give sockets a moment to flush their stream errors; listeners make sure they are gone.
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}

export interface C2sListenerOptions extends C2sOptions {
  host: string;
  port: number;
  /** Direct TLS (XEP-0368) instead of STARTTLS. */
  directTls: boolean;
  /** Used for STARTTLS upgrades. */
  secureContext: SecureContext;
  /** PEM key and certificate for the direct TLS listener. */
  tls: { key: Buffer; cert: Buffer };
  parserLimits: Partial<StreamParserLimits>;
  /** Per-connection read shaping (limits.bytesPerSecond / burstBytes). */
  shaper?: { bytesPerSecond: number; burstBytes: number };
}

/** Accepts client connections on one TCP port; their sessions are tracked by the shared ClientConnections. */
export class C2sListener {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private count = 0;

  constructor(
    private readonly core: Core,
    private readonly opts: C2sListenerOptions,
    private readonly connections: ClientConnections,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<number> {
    const onSocket = (socket: Socket) => this.accept(socket);
    this.server = this.opts.directTls
      ? createTlsServer({ key: this.opts.tls.key, cert: this.opts.tls.cert, minVersion: MIN_TLS, handshakeTimeout: 30_000 }, onSocket)
      : createServer(onSocket);
    if (this.opts.directTls) {
      this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        this.log.debug({ err: err.message, address: normaliseAddress(socket.remoteAddress) }, 'TLS handshake failed');
      });
    }
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen({ host: this.opts.host, port: this.opts.port, backlog: 1024 }, () => resolve());
    });
    const port = (this.server.address() as { port: number }).port;
    this.log.info({ port, host: this.opts.host, tls: this.opts.directTls ? 'direct' : 'starttls' }, 'listening for clients');
    return port;
  }

  /** Open client connections on this port. */
  get connectionCount(): number {
    return this.count;
  }

  private accept(socket: Socket): void {
    const address = normaliseAddress(socket.remoteAddress);
    let logged = false;
    const shaper = this.opts.shaper && {
      ...this.opts.shaper,
      onShaped: () => {
        if (logged) return;
        logged = true; // once per connection
        this.log.info({ address, limit: this.opts.shaper!.bytesPerSecond }, 'connection over limits.bytesPerSecond: reading paused');
      },
    };
    const transport = new TcpTransport(socket, this.opts.directTls ? undefined : this.opts.secureContext, this.opts.parserLimits, shaper);
    const session = new C2sSession(transport, this.core, this.opts, this.log);
    this.count++;
    this.sockets.add(socket);
    const release = this.connections.admit(session, address);
    socket.once('close', () => {
      this.count--;
      this.sockets.delete(socket);
      release();
    });
  }

  /**
   * Stops accepting and resolves once every connection of this port is gone. Sessions are
   * ended by ClientConnections.closeAll; sockets still open after `graceMs` are destroyed.
   */
  async close(graceMs = 3000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}
