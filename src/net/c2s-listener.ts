import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Core } from '../core';
import { StreamError } from '../errors';
import { C2sSession, type C2sOptions } from '../stream/c2s-session';
import { TcpTransport, normaliseAddress } from './tcp-transport';
import type { StreamParserLimits } from '../xml/stream-parser';
import { MIN_TLS } from '../tls';

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
  maxConnectionsPerAddress: number;
}

/** Accepts client connections on one port and owns their sessions until they close. */
export class C2sListener {
  private server: Server | undefined;
  private readonly sessions = new Set<C2sSession>();
  private readonly perAddress = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly core: Core, private readonly opts: C2sListenerOptions, private readonly log: Logger) {}

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
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions) s.checkTimers(now);
    }, Math.min(5000, this.opts.authTimeoutMs / 2));
    this.timer.unref();
    const port = (this.server.address() as { port: number }).port;
    this.log.info({ port, host: this.opts.host, tls: this.opts.directTls ? 'direct' : 'starttls' }, 'listening for clients');
    return port;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    const address = normaliseAddress(socket.remoteAddress);
    const count = (this.perAddress.get(address) ?? 0) + 1;
    const transport = new TcpTransport(socket, this.opts.directTls ? undefined : this.opts.secureContext, this.opts.parserLimits);
    const session = new C2sSession(transport, this.core, this.opts, this.log);
    this.perAddress.set(address, count);
    this.sessions.add(session);
    socket.once('close', () => {
      this.sessions.delete(session);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
    if (count > this.opts.maxConnectionsPerAddress) {
      this.log.warn({ address, limit: this.opts.maxConnectionsPerAddress }, 'too many connections from one address');
      session.close(new StreamError('policy-violation', 'Too many connections from your address'));
    }
  }

  /** Stops accepting; with `error`, closes every session with that stream error. */
  async close(error?: StreamError): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const server = this.server;
    this.server = undefined;
    const closing = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const s of this.sessions) s.close(error);
    // Give sockets a moment to flush their stream errors, then make sure they are gone.
    const deadline = Date.now() + 2000;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await closing;
  }
}
