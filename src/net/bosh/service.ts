import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Core } from '../../core';
import type { StreamError } from '../../errors';
import { Jid } from '../../jid';
import type { Element } from '../../xml/element';
import type { C2sOptions } from '../../stream/c2s-session';
import { DEFAULT_PARSER_LIMITS, type StreamParserLimits } from '../../xml/stream-parser';
import { BodyError, LEGACY_STATUS, parseBody, parseRid, terminalBody, type TerminalCondition } from './body';
import { BoshSession, writeResponse, type BoshHost, type BoshSettings } from './session';

export interface BoshOptions {
  /** Longest 'wait' granted (seconds), default 60; 'hold' at most 1; 'requests' = hold + 1; inactivity default 60 s; maxpause default 120 s; polling 2 s. */
  maxWait?: number; maxHold?: number; inactivity?: number; maxPause?: number; polling?: number;
  /** Max bytes of one HTTP request body (default: the stanza limit + 8 KiB). */
  maxBodyBytes?: number;
  /** CORS: allowed origins, null = any. */
  allowedOrigins?: string[] | null;
  /** Parser limits for request bodies (the stanza limit, depth, attributes), as for the c2s listeners. */
  parserLimits?: Partial<StreamParserLimits>;
  /** Sessions one client address may have at once (default: no limit here). */
  maxSessionsPerAddress?: number;
  /**
   * A shared connection registry (e.g. the listener's ClientConnections.admit): each BOSH
   * session is admitted once its creation request is answered and released when it ends.
   * The registry may close it (per-address limits) and drive its timers.
   */
  admit?: (session: BoshTrackedSession, address: string) => () => void;
}

/** What a connection registry sees of a BOSH session. */
export interface BoshTrackedSession {
  checkTimers(now: number): void;
  close(error?: StreamError): void;
}

const HELP = 'This is the BOSH endpoint (XEP-0124, XEP-0206) of an XMPP server.\n'
  + 'Point a BOSH-capable XMPP client (e.g. Converse.js) at this URL; it speaks HTTP POST.\n';

/** Some of a body, enough to find the sid of a request that cannot be parsed. */
const SID_RE = /\bsid\s*=\s*(?:'([^']{1,128})'|"([^"]{1,128})")/;

interface Finished {
  body: string;
  status: number;
  contentType: string;
  expires: number;
}

/**
 * The BOSH connection manager, mounted by the HTTP listener at /http-bind. It is built
 * into the server, so each BOSH session is one C2sSession over a BoshTransport: no
 * second XML stream to a backend.
 *
 * Errors follow XEP-0124 §17: binding errors are HTTP 200 with a terminal <body/>; the
 * deprecated 400/403/404 codes are used only for sessions created without 'ver' (legacy
 * clients), and for request bodies that are not a <body/> at all (no session can be
 * told from them). Oversized bodies get 413 (with a policy-violation body).
 */
export class BoshService {
  private readonly sessions = new Map<string, BoshSession>();
  private readonly perAddress = new Map<string, number>();
  /** Sessions that ended with an answer the client may not have seen: their sid gets it again. */
  private readonly finished = new Map<string, Finished>();
  private readonly settings: BoshSettings;
  private readonly maxBodyBytes: number;
  private readonly parserLimits: Partial<StreamParserLimits>;
  private readonly allowedOrigins: readonly string[] | null;
  private readonly maxPerAddress: number;
  private readonly admit: BoshOptions['admit'];
  private readonly releases = new Map<BoshSession, () => void>();
  private readonly host: BoshHost;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(core: Core, session: C2sOptions, opts: BoshOptions, log: Logger) {
    this.log = log.child({ component: 'bosh' });
    this.settings = {
      maxWait: nonNegative(opts.maxWait, 60),
      maxHold: nonNegative(opts.maxHold, 1),
      inactivity: positive(opts.inactivity, 60),
      maxPause: nonNegative(opts.maxPause, 120),
      polling: nonNegative(opts.polling, 2),
    };
    const stanzaLimit = opts.parserLimits?.maxStanzaBytes ?? DEFAULT_PARSER_LIMITS.maxStanzaBytes;
    this.maxBodyBytes = opts.maxBodyBytes ?? stanzaLimit + 8192;
    const depth = opts.parserLimits?.maxDepth ?? DEFAULT_PARSER_LIMITS.maxDepth;
    // The <body/> wrapper is one more level than the stanzas inside it.
    this.parserLimits = { ...opts.parserLimits, maxStanzaBytes: this.maxBodyBytes, maxDepth: depth + 1 };
    this.allowedOrigins = opts.allowedOrigins === undefined ? null : opts.allowedOrigins;
    this.maxPerAddress = opts.maxSessionsPerAddress ?? Infinity;
    this.admit = opts.admit;
    this.host = {
      core,
      c2s: session,
      log,
      settings: this.settings,
      ended: (s, after) => this.onEnded(s, after),
    };
    const period = Math.max(50, Math.min(1000, this.settings.inactivity * 250));
    this.timer = setInterval(() => this.tick(Date.now()), period);
    this.timer.unref();
  }

  /** Bound + unbound BOSH sessions, for status and per-address limits. */
  get connectionCount(): number {
    return this.sessions.size;
  }

  /** BOSH sessions of one client address. */
  sessionsFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  /** Handles POST (and OPTIONS preflight, CORS headers on every response); GET may get a short help text. */
  handle(req: IncomingMessage, res: ServerResponse, client: { address: string; secure: boolean }): void {
    this.cors(req, res);
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(HELP), 'Cache-Control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : HELP);
      return;
    }
    if (method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, HEAD, POST, OPTIONS', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed\n');
      return;
    }
    this.readBody(req, res).then((buf) => {
      if (buf) this.onBody(buf, res, client);
    }, (err: unknown) => {
      this.log.error({ err }, 'BOSH request failed');
      writeResponse(res, 500, terminalBody('internal-server-error'));
    });
  }

  /** Ends every BOSH session with this stream error (or a graceful terminate without one). */
  async close(error?: StreamError): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of [...this.sessions.values()]) {
      try {
        s.close(error);
      } catch (err) {
        this.log.error({ err }, 'closing a BOSH session failed');
      }
    }
    // The answers are written; give the sockets a turn to send them.
    await new Promise((r) => setImmediate(r));
  }

  // ---- HTTP ---------------------------------------------------------------------------

  private cors(req: IncomingMessage, res: ServerResponse): void {
    if (this.allowedOrigins === null) {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else {
      res.setHeader('Vary', 'Origin');
      const origin = req.headers.origin;
      if (origin !== undefined && this.allowedOrigins.includes(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
    }
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.setHeader('Access-Control-Max-Age', '86400');
  }

  /** The request body, or undefined when it was too large (answered) or the client went away. */
  private readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    const limit = this.maxBodyBytes;
    const declared = Number(req.headers['content-length']);
    // Announced too large: refused on its first chunk (read only to find the sid).
    const over = Number.isFinite(declared) && declared > limit;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (v: Buffer | undefined) => {
        if (done) return;
        done = true;
        req.off('data', onData);
        resolve(v);
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (over || size > limit) {
          this.tooLarge(req, res, chunks[0] ?? chunk);
          finish(undefined);
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => {
        if (done) return;
        if (over) {
          this.tooLarge(req, res, chunks[0]);
          finish(undefined);
        } else {
          finish(Buffer.concat(chunks, size));
        }
      });
      req.once('aborted', () => finish(undefined));
      req.once('error', () => finish(undefined));
      req.once('close', () => finish(undefined));
    });
  }

  /** XEP-0124 leaves body size to the server: 413 with a policy-violation body, and the session (if we can tell it) ends. */
  private tooLarge(req: IncomingMessage, res: ServerResponse, start: Buffer | undefined): void {
    this.log.info({ limit: this.maxBodyBytes }, 'BOSH request body too large');
    const session = start ? this.sessions.get(sniffSid(start) ?? '') : undefined;
    session?.terminate('policy-violation', 'request body too large');
    if (!res.headersSent) res.setHeader('Connection', 'close');
    writeResponse(res, 413, terminalBody('policy-violation'));
    req.resume();
  }

  private onBody(buf: Buffer, res: ServerResponse, client: { address: string; secure: boolean }): void {
    if (this.closed) return writeResponse(res, 200, terminalBody('system-shutdown'));
    let body: Element;
    try {
      body = parseBody(buf, this.parserLimits);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      this.log.debug({ address: client.address, reason: err.message }, 'bad BOSH request');
      const session = this.sessions.get(sniffSid(buf) ?? '');
      session?.terminate('bad-request', 'unparseable request body');
      return writeResponse(res, 400, terminalBody('bad-request'));
    }
    const sid = body.attrs.sid;
    if (sid === undefined) return this.create(body, res, client);
    const session = this.sessions.get(sid);
    if (session) return session.handle(body, res, client.secure);
    const after = this.finished.get(sid);
    if (after) return writeResponse(res, after.status, after.body, after.contentType);
    writeResponse(res, 200, terminalBody('item-not-found'));
  }

  // ---- sessions -------------------------------------------------------------------------

  /** XEP-0124 §7.1: a session creation request. */
  private create(body: Element, res: ServerResponse, client: { address: string; secure: boolean }): void {
    const legacy = body.attrs.ver === undefined;
    const reject = (condition: TerminalCondition, reason: string) => {
      this.log.debug({ address: client.address, condition, reason }, 'BOSH session refused');
      writeResponse(res, legacy ? LEGACY_STATUS[condition] ?? 200 : 200, terminalBody(condition));
    };
    if (parseRid(body.attrs.rid) === undefined) return reject('bad-request', 'missing or invalid rid');
    const to = body.attrs.to;
    if (to !== undefined) {
      const jid = Jid.tryParse(to);
      if (!jid || !jid.isDomain || !this.host.core.isLocalDomain(jid.domain)) return reject('host-unknown', `${to} is not hosted here`);
    }
    const count = this.sessionsFrom(client.address);
    if (count >= this.maxPerAddress) {
      this.log.warn({ address: client.address, limit: this.maxPerAddress }, 'too many BOSH sessions from one address');
      return reject('policy-violation', 'too many sessions from this address');
    }
    let sid: string;
    do sid = randomBytes(18).toString('base64url');
    while (this.sessions.has(sid) || this.finished.has(sid));
    const session = new BoshSession(sid, this.host, body, client);
    this.sessions.set(sid, session);
    this.perAddress.set(client.address, count + 1);
    session.start(body, res);
    if (this.admit && !session.isEnded) {
      const release = this.admit(session, client.address);
      // The registry may have refused it at once (its own per-address limit).
      if (session.isEnded) release();
      else this.releases.set(session, release);
    }
  }

  private onEnded(s: BoshSession, after: { body: string; status: number } | undefined): void {
    if (this.sessions.get(s.sid) !== s) return;
    this.sessions.delete(s.sid);
    const release = this.releases.get(s);
    if (release) {
      this.releases.delete(s);
      release();
    }
    const n = (this.perAddress.get(s.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(s.address);
    else this.perAddress.set(s.address, n);
    if (after) {
      // Kept as long as the client could still be expected to come back for it.
      const ttl = (Math.max(s.inactivity, s.wait) + 30) * 1000;
      this.finished.set(s.sid, { ...after, contentType: s.contentType, expires: Date.now() + ttl });
    }
  }

  private tick(now: number): void {
    for (const s of this.sessions.values()) {
      try {
        s.checkTimers(now);
      } catch (err) {
        this.log.error({ err }, 'BOSH session timer failed');
      }
    }
    for (const [sid, f] of this.finished) if (f.expires <= now) this.finished.delete(sid);
  }
}

function sniffSid(buf: Buffer): string | undefined {
  const m = SID_RE.exec(buf.subarray(0, 2048).toString('latin1'));
  return m ? m[1] ?? m[2] : undefined;
}

function nonNegative(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : dflt;
}

function positive(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
}
