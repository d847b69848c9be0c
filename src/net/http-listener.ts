import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Core } from '../core';
import { C2sSession, type C2sOptions } from '../stream/c2s-session';
import type { StreamParserLimits } from '../xml/stream-parser';
import { x } from '../xml/element';
import { MIN_TLS } from '../tls';
import type { ClientConnections } from './c2s-listener';
import { AddressList, resolveClient, type HttpClient } from './http-proxy';
import { WebSocketTransport, redirectWebSocket } from './websocket-transport';
import { normaliseAddress } from './tcp-transport';

/** RFC 7395 endpoint. */
export const WEBSOCKET_PATH = '/xmpp-websocket';
/** XEP-0206 endpoint (served by BoshService once it is routed here). */
export const BOSH_PATH = '/http-bind';
/** XEP-0156 link relations. */
export const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
export const REL_BOSH = 'urn:xmpp:alt-connections:xbosh';
const NS_XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
/** WebSocket ping frames keep idle connections open through proxies (nginx drops them after 60 s by default). */
const WS_PING_INTERVAL_MS = 30_000;

export interface HttpListenerOptions {
  host: string;
  /** Plain HTTP port; null: off. */
  port: number | null;
  /** HTTPS port; null: off. */
  tlsPort: number | null;
  /** PEM key and certificate (the c2s ones). */
  tls: { key: Buffer; cert: Buffer };
  /** Addresses and CIDR blocks of reverse proxies whose X-Forwarded-* headers are believed. */
  trustedProxies: readonly string[];
  /** Logins over plain ws:// from addresses that are neither loopback nor a trusted proxy. */
  allowInsecure: boolean;
  /** Origins allowed to open a WebSocket (normalised, e.g. https://chat.example.org); null: any. */
  allowedOrigins: readonly string[] | null;
  /** Send every WebSocket client here instead (RFC 7395 §3.6.1); null: serve them. */
  websocketSeeOtherUri: string | null;
  /** Session options for WebSocket clients (requireTls is derived from allowInsecure). */
  session: C2sOptions;
  parserLimits: Partial<StreamParserLimits> & { maxStanzaBytes: number };
  /** For /health's uptime. */
  startedAt: number;
}

/** What a route handler learns about the request beyond req and res. */
export interface HttpContext {
  /** The client behind any trusted proxy: address, whether it is secure, scheme and host it used. */
  client: HttpClient;
  url: URL;
  /** The request came in on the HTTPS port. */
  tls: boolean;
}

/**
 * Handles one request. A handler that throws or rejects gets a 500 (when nothing was sent yet);
 * the error is logged.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, ctx: HttpContext) => void | Promise<void>;

export interface RouteOptions {
  /** Methods this route accepts; others get 405 with an Allow header. Omitted: the handler sees every method. */
  methods?: readonly string[];
}

interface Route {
  prefix: string;
  handler: HttpHandler;
  methods: readonly string[] | undefined;
}

/**
 * The web listener: plain HTTP and HTTPS ports sharing one route table. Built in: XMPP over
 * WebSocket (RFC 7395) at /xmpp-websocket, host-meta (XEP-0156) and /health. Others plug in
 * with addRoute: BOSH at /http-bind, the web chat page at /chat.
 */
export class HttpListener {
  readonly proxies: AddressList;
  private readonly routes: Route[] = [];
  private readonly servers: { name: 'http' | 'https'; server: Server }[] = [];
  private readonly wss: WebSocketServer;
  private readonly webSockets = new Set<WebSocket>();
  private readonly sockets = new Set<Socket>();
  private readonly warnedPeers = new Set<string>();
  private readonly ports = new Map<'http' | 'https', number>();
  private pingTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly core: Core,
    private readonly opts: HttpListenerOptions,
    private readonly connections: ClientConnections,
    private readonly log: Logger,
  ) {
    this.proxies = new AddressList(opts.trustedProxies);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // Our own check answers oversized messages with <policy-violation/>; this bounds what ws buffers.
      maxPayload: opts.parserLimits.maxStanzaBytes * 2 + 1024,
      // RFC 7395 §3.2: without 'xmpp' in the answer, no XMPP connection is established.
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
    const get = { methods: ['GET', 'HEAD'] };
    const cors = { methods: ['GET', 'HEAD', 'OPTIONS'] };
    this.addRoute(WEBSOCKET_PATH, (_req, res) => this.websocketPage(res), get);
    this.addRoute('/.well-known/host-meta', (req, res, ctx) => this.hostMeta(req, res, ctx, 'xrd'), cors);
    this.addRoute('/.well-known/host-meta.json', (req, res, ctx) => this.hostMeta(req, res, ctx, 'json'), cors);
    this.addRoute('/health', (_req, res) => this.health(res), get);
  }

  /**
   * Serves every path under `pathPrefix` (whole segments: '/http-bind' matches '/http-bind'
   * and '/http-bind/x', not '/http-binder'); the longest matching prefix wins. Returns a
   * function that removes the route.
   */
  addRoute(pathPrefix: string, handler: HttpHandler, options: RouteOptions = {}): () => void {
    const prefix = pathPrefix.length > 1 ? pathPrefix.replace(/\/+$/, '') : pathPrefix;
    if (!prefix.startsWith('/')) throw new Error(`HTTP route ${pathPrefix} must start with /`);
    if (this.routes.some((r) => r.prefix === prefix)) throw new Error(`HTTP route ${prefix} is already taken`);
    const route: Route = { prefix, handler, methods: options.methods };
    this.routes.push(route);
    this.routes.sort((a, b) => b.prefix.length - a.prefix.length);
    return () => {
      const i = this.routes.indexOf(route);
      if (i !== -1) this.routes.splice(i, 1);
    };
  }

  hasRoute(pathPrefix: string): boolean {
    return this.routes.some((r) => r.prefix === pathPrefix);
  }

  /** Starts the configured ports; returns the port numbers bound (0 in the config picks a free one). */
  async listen(): Promise<Map<'http' | 'https', number>> {
    if (this.opts.port !== null) await this.start('http', this.opts.port);
    if (this.opts.tlsPort !== null) await this.start('https', this.opts.tlsPort);
    this.pingTimer = setInterval(() => {
      for (const ws of this.webSockets) ws.ping();
    }, WS_PING_INTERVAL_MS);
    this.pingTimer.unref();
    if (this.opts.websocketSeeOtherUri !== null) {
      this.log.info({ uri: this.opts.websocketSeeOtherUri }, 'WebSocket clients are redirected (http.websocketSeeOtherUri)');
    }
    if (this.opts.allowInsecure) {
      this.log.warn('http.allowInsecure is true: clients may log in over plain ws:// from any address');
    }
    return new Map(this.ports);
  }

  /** Open WebSocket connections. */
  get connectionCount(): number {
    return this.webSockets.size;
  }

  /** Whether a browser page from `origin` may open a WebSocket (no Origin header: not a browser, allowed). */
  isOriginAllowed(origin: string | undefined): boolean {
    if (this.opts.allowedOrigins === null || origin === undefined) return true;
    return this.opts.allowedOrigins.includes(origin.trim().toLowerCase().replace(/\/$/, ''));
  }

  /** The server is going down: /health answers 503 and new WebSockets are refused with 503. */
  beginShutdown(): void {
    this.stopping = true;
  }

  /**
   * Stops accepting and resolves once every connection is gone; sessions are ended by
   * ClientConnections.closeAll, and whatever is still open after `graceMs` is destroyed.
   */
  async close(graceMs = 3000): Promise<void> {
    if (this.closing) return this.closing;
    this.stopping = true;
    this.closing = this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    const closed = Promise.all(this.servers.map(({ server }) => new Promise<void>((r) => {
      server.close(() => r());
      server.closeIdleConnections();
    })));
    const timer = setTimeout(() => {
      for (const ws of this.webSockets) ws.terminate();
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    this.wss.close();
  }

  // ---- listening ----------------------------------------------------------------

  private async start(name: 'http' | 'https', port: number): Promise<void> {
    const tls = name === 'https';
    const onRequest = (req: IncomingMessage, res: ServerResponse) => void this.onRequest(req, res, tls);
    const server = tls
      ? createHttpsServer({ key: this.opts.tls.key, cert: this.opts.tls.cert, minVersion: MIN_TLS, handshakeTimeout: 30_000 }, onRequest)
      : createServer(onRequest);
    server.headersTimeout = 20_000;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head, tls));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    if (tls) {
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        this.log.debug({ err: err.message, address: normaliseAddress(socket.remoteAddress) }, 'TLS handshake failed');
      });
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port, backlog: 1024 }, () => resolve());
    });
    this.servers.push({ name, server });
    const bound = (server.address() as { port: number }).port;
    this.ports.set(name, bound);
    this.log.info({ port: bound, host: this.opts.host, tls }, `listening for ${tls ? 'HTTPS' : 'HTTP'} (WebSocket ${tls ? 'wss' : 'ws'}://…${WEBSOCKET_PATH})`);
  }

  private client(req: IncomingMessage, tls: boolean): HttpClient {
    const client = resolveClient(req.socket.remoteAddress, tls, req.headers, this.proxies);
    if (!client.proxied && req.headers['x-forwarded-for'] !== undefined && !this.warnedPeers.has(client.peer) && this.warnedPeers.size < 16) {
      this.warnedPeers.add(client.peer);
      this.log.warn({ peer: client.peer },
        'ignoring X-Forwarded-For from a peer that is not a trusted proxy: if it is your reverse proxy, add it to http.trustedProxies');
    }
    return client;
  }

  // ---- plain requests -------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse, tls: boolean): Promise<void> {
    const url = requestUrl(req.url);
    if (!url) return sendText(res, 400, 'Bad request');
    const route = this.match(url.pathname);
    if (!route) return sendText(res, 404, 'Not found');
    if (route.methods && !route.methods.includes(req.method ?? '')) {
      res.setHeader('Allow', route.methods.join(', '));
      return sendText(res, 405, `Method ${req.method ?? ''} not allowed here; use ${route.methods.join(', ')}`);
    }
    const ctx: HttpContext = { client: this.client(req, tls), url, tls };
    try {
      await route.handler(req, res, ctx);
    } catch (err) {
      this.log.error({ err, path: url.pathname, method: req.method }, 'HTTP handler failed');
      if (!res.headersSent) sendText(res, 500, 'Internal server error');
      else res.destroy();
    }
  }

  private match(path: string): Route | undefined {
    return this.routes.find((r) => path === r.prefix || (path.startsWith(r.prefix) && (r.prefix === '/' || path[r.prefix.length] === '/')));
  }

  private websocketPage(res: ServerResponse): void {
    res.setHeader('Upgrade', 'websocket');
    res.setHeader('Connection', 'Upgrade');
    sendText(res, 426, "This is an XMPP over WebSocket endpoint (RFC 7395): connect with a WebSocket client and the 'xmpp' subprotocol");
  }

  /** XEP-0156: where to connect, with the scheme and host the client used to reach us. */
  private hostMeta(req: IncomingMessage, res: ServerResponse, ctx: HttpContext, format: 'xrd' | 'json'): void {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
      res.setHeader('Access-Control-Max-Age', '86400');
      res.writeHead(204).end();
      return;
    }
    const { scheme } = ctx.client;
    const host = ctx.client.host ?? `${this.core.domains[0]}:${req.socket.localPort ?? ''}`;
    const links: { rel: string; href: string }[] = [];
    if (this.hasRoute(BOSH_PATH)) links.push({ rel: REL_BOSH, href: `${scheme}://${host}${BOSH_PATH}` });
    links.push({ rel: REL_WEBSOCKET, href: `${scheme === 'https' ? 'wss' : 'ws'}://${host}${WEBSOCKET_PATH}` });
    res.setHeader('Vary', 'Host, X-Forwarded-Host, X-Forwarded-Proto');
    if (format === 'json') {
      send(res, 200, 'application/json', JSON.stringify({ links }, null, 2) + '\n');
    } else {
      const xrd = x('XRD', { xmlns: NS_XRD }, links.map((l) => x('Link', l)));
      send(res, 200, 'application/xrd+xml; charset=utf-8', "<?xml version='1.0' encoding='utf-8'?>\n" + xrd.toString() + '\n');
    }
  }

  /** For load balancers and container health checks: 200 while serving, 503 while shutting down. */
  private health(res: ServerResponse): void {
    const body = {
      status: this.stopping ? 'shutting-down' : 'ok',
      sessions: this.core.sessions.size,
      connections: this.connections.size,
      uptimeSeconds: Math.round((Date.now() - this.opts.startedAt) / 1000),
    };
    res.setHeader('Cache-Control', 'no-store');
    send(res, this.stopping ? 503 : 200, 'application/json', JSON.stringify(body) + '\n');
  }

  // ---- WebSocket ------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, tls: boolean): void {
    socket.on('error', () => socket.destroy());
    const url = requestUrl(req.url);
    if (!url || (url.pathname !== WEBSOCKET_PATH && url.pathname !== WEBSOCKET_PATH + '/')) return rejectUpgrade(socket, 404, 'Not found');
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') return rejectUpgrade(socket, 400, 'Only WebSocket upgrades are supported here');
    if (this.stopping) return rejectUpgrade(socket, 503, 'The server is shutting down');
    const client = this.client(req, tls);
    if (!this.isOriginAllowed(req.headers.origin)) {
      this.log.info({ origin: req.headers.origin, address: client.address }, 'WebSocket refused: origin not in http.allowedOrigins');
      return rejectUpgrade(socket, 403, 'This origin may not connect to this server');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onWebSocket(ws, req, client, tls));
  }

  private onWebSocket(ws: WebSocket, req: IncomingMessage, client: HttpClient, tls: boolean): void {
    if (ws.protocol !== 'xmpp') {
      // RFC 7395 §3.2: our answer carried no 'xmpp', so this is not an XMPP connection; end it.
      ws.on('error', () => { /* 'close' follows */ });
      ws.close(1002, "The 'xmpp' WebSocket subprotocol is required (RFC 7395)");
      setTimeout(() => ws.terminate(), 5000).unref();
      return;
    }
    if (this.opts.websocketSeeOtherUri !== null) return redirectWebSocket(ws, this.opts.websocketSeeOtherUri);
    const refuse = !client.secure && !this.opts.allowInsecure
      ? 'Logins over plain ws:// are accepted only from loopback or a trusted proxy: connect with wss://'
      : undefined;
    const transport = new WebSocketTransport(ws, {
      remoteAddress: client.address,
      secure: client.secure,
      refuse,
      // Channel binding only when the TLS session is the client's own, not a proxy's.
      tlsSocket: tls && !client.proxied ? (req.socket as TLSSocket) : undefined,
      limits: this.opts.parserLimits,
    });
    const session = new C2sSession(transport, this.core, { ...this.opts.session, requireTls: !this.opts.allowInsecure }, this.log);
    this.webSockets.add(ws);
    const release = this.connections.admit(session, client.address);
    ws.once('close', () => {
      this.webSockets.delete(ws);
      release();
    });
    this.log.debug({ session: session.id, address: client.address, peer: client.peer, secure: client.secure, tls }, 'WebSocket connected');
    if (refuse !== undefined) this.log.info({ address: client.address }, 'plain ws:// from a remote address: login refused (see http.trustedProxies, http.allowInsecure)');
  }
}

/** The request target as a URL (origin-form '/path?q', or absolute-form). */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    if (target === undefined) return undefined;
    return target.startsWith('/') ? new URL('http://localhost' + target) : new URL(target);
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  send(res, status, 'text/plain; charset=utf-8', text + '\n');
}

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  const body = text + '\n';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
    body,
  );
}
