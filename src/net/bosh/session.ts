import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Core } from '../../core';
import { x, type Attrs, type Element } from '../../xml/element';
import type { StreamError } from '../../errors';
import { C2sSession, type C2sOptions } from '../../stream/c2s-session';
import { BoshTransport } from './transport';
import {
  BOSH_VERSION, LEGACY_STATUS, NS_CLIENT, NS_STREAM, isEmptyRequest, parseRid, parseUint, qualifyPayload,
  renderBody, terminalBody, xboshAttr, type Payload, type TerminalCondition,
} from './body';

/** Service-wide limits, in seconds (see BoshOptions). */
export interface BoshSettings {
  maxWait: number;
  maxHold: number;
  inactivity: number;
  maxPause: number;
  polling: number;
}

/** What a BOSH session needs from the service that owns it. */
export interface BoshHost {
  readonly core: Core;
  readonly c2s: C2sOptions;
  readonly log: Logger;
  readonly settings: BoshSettings;
  /**
   * The session is over. `after` is what later requests for its sid get (the terminal
   * response the client may not have seen yet); undefined: answer as for an unknown sid.
   */
  ended(session: BoshSession, after: { body: string; status: number } | undefined): void;
}

export const DEFAULT_CONTENT_TYPE = 'text/xml; charset=utf-8';
/** Times one rid may be repeated before it counts as abuse (XEP-0124 §14.3). */
const MAX_REPEATS = 8;
/** How long a terminate request waits for its payloads to be handled before the stream closes anyway. */
const TERMINATE_FLUSH_MS = 2000;
const NS_PING = 'urn:xmpp:ping';

/** One HTTP request of the session that has not been answered yet. */
interface Open {
  rid: number;
  /** undefined once the client's connection went away (a resend of the rid takes its place). */
  res: ServerResponse | undefined;
  repeats: number;
}

interface Pending extends Open {
  body: Element;
}

interface Held extends Open {
  timer: NodeJS.Timeout | undefined;
  /** Nothing in it: no payloads, restart, pause or terminate. */
  empty: boolean;
  arrivedAt: number;
}

/** Writes one BOSH HTTP response, unless the client's connection is already gone. */
export function writeResponse(res: ServerResponse | undefined, status: number, body: string, contentType = DEFAULT_CONTENT_TYPE): void {
  if (!isAlive(res)) return;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

function isAlive(res: ServerResponse | undefined): res is ServerResponse {
  return res !== undefined && !res.writableEnded && !res.destroyed;
}

function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map((p) => Number(p) || 0);
  const [bm = 0, bn = 0] = b.split('.').map((p) => Number(p) || 0);
  return am !== bm ? am - bm : an - bn;
}

function sha1hex(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}

/**
 * One BOSH session (XEP-0124) carrying one XMPP stream (XEP-0206) for one C2sSession.
 *
 * Requests are taken in 'rid' order: one arriving early waits in `pending` until the gap is
 * filled; once processed it joins `held`, the requests kept open for the server to answer
 * (at most 'hold' of them; the oldest is answered when a newer one pushes it out, when data
 * arrives, or when 'wait' runs out). Answers go out in rid order and the last few are kept
 * so that a client whose connection broke can resend a rid and get the same answer again.
 */
export class BoshSession {
  readonly address: string;
  readonly secure: boolean;
  readonly c2s: C2sSession;
  readonly wait: number;
  readonly hold: number;
  readonly requests: number;
  readonly inactivity: number;
  readonly polling: number;
  readonly maxPause: number;
  /** No 'ver' in the session creation request: binding errors also use the old HTTP codes. */
  readonly legacy: boolean;
  readonly contentType: string;

  private readonly transport: BoshTransport;
  private readonly log: Logger;
  /** Answers are held at most this many (0 for polling sessions: 'hold' or 'wait' is 0). */
  private readonly effectiveHold: number;
  private readonly ver: string;
  private readonly to: string | undefined;
  private readonly lang: string | undefined;
  private readonly xmppVersion: string;
  private lastRid: number;
  private readonly pending = new Map<number, Pending>();
  private held: Held[] = [];
  /** Recent answers by rid, oldest first, for resent requests. */
  private readonly cache = new Map<number, { body: string; status: number; repeats: number }>();
  private outbox: Payload[] = [];
  private flushScheduled = false;
  private paused = false;
  private terminating = false;
  private ended = false;
  private disconnected = false;
  private lastResponseAt = Date.now();
  private inactivityMs: number;
  private lastArrivalAt = 0;
  private lastPoll: { arrivedAt: number; empty: boolean; answeredEmpty: boolean } | undefined;
  private key: string | undefined;
  private streamFrom: string | undefined;
  private streamId: string | undefined;

  constructor(readonly sid: string, private readonly host: BoshHost, creation: Element, client: { address: string; secure: boolean }) {
    const s = host.settings;
    this.address = client.address;
    this.secure = client.secure;
    this.log = host.log.child({ bosh: sid.slice(0, 8) });
    this.lastRid = parseRid(creation.attrs.rid)!;
    this.legacy = creation.attrs.ver === undefined;
    const ver = creation.attrs.ver;
    this.ver = ver === undefined || !/^\d{1,4}\.\d{1,4}$/.test(ver) || compareVersions(ver, BOSH_VERSION) > 0 ? BOSH_VERSION : ver;
    const wait = parseUint(creation.attrs.wait);
    this.wait = Math.min(wait ?? s.maxWait, s.maxWait);
    const hold = parseUint(creation.attrs.hold);
    this.hold = Math.min(hold ?? 1, s.maxHold);
    this.requests = this.hold + 1;
    this.effectiveHold = this.wait === 0 ? 0 : this.hold;
    this.polling = s.polling;
    // XEP-0124 §11: polling sessions get a longer inactivity period than long-polling ones.
    this.inactivity = this.effectiveHold === 0 ? s.inactivity + s.polling : s.inactivity;
    this.inactivityMs = this.inactivity * 1000;
    this.maxPause = s.maxPause;
    const content = creation.attrs.content;
    this.contentType = content !== undefined && /^[\x20-\x7e]{1,200}$/.test(content) ? content : DEFAULT_CONTENT_TYPE;
    this.to = creation.attrs.to;
    this.lang = creation.attrs['xml:lang'];
    this.xmppVersion = xboshAttr(creation, 'version') ?? '1.0';
    this.key = creation.attrs.newkey?.toLowerCase();

    this.transport = new BoshTransport(client.address, client.secure, {
      streamOpened: (attrs) => {
        this.streamFrom = attrs.from;
        this.streamId = attrs.id;
      },
      push: (p) => this.push(p),
      closeStream: (err) => this.streamClosed(err),
      setPaused: (p) => {
        this.paused = p;
        if (!p) this.drain();
      },
    });
    this.c2s = new C2sSession(this.transport, host.core, host.c2s, host.log);
    this.log.debug({ session: this.c2s.id, address: this.address, wait: this.wait, hold: this.hold }, 'BOSH session created');
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Answers the session creation request (XEP-0124 §7.2, XEP-0206 §4): attributes and the first stream features. */
  start(creation: Element, res: ServerResponse): void {
    const now = Date.now();
    const h: Held = { rid: this.lastRid, res, repeats: 0, timer: undefined, empty: false, arrivedAt: now };
    this.held.push(h);
    this.watch(res, h);
    this.lastArrivalAt = now;
    this.transport.input.onOpen(this.streamAttrs(creation), 'stream:stream');
    for (const el of creation.elements) {
      if (this.ended) return;
      this.transport.input.onElement(qualifyPayload(el));
    }
    if (this.ended) return;
    this.held.shift();
    this.answer(h, true, {
      sid: this.sid,
      wait: this.wait,
      requests: this.requests,
      hold: this.hold,
      inactivity: Math.ceil(this.inactivity),
      polling: Math.ceil(this.polling),
      maxpause: Math.ceil(this.maxPause),
      ver: this.ver,
      from: this.streamFrom,
      authid: this.streamId,
      secure: 'true',
      'xmpp:version': '1.0',
      'xmpp:restartlogic': 'true',
    });
  }

  /** A request for this session (anything but the creation request). */
  handle(body: Element, res: ServerResponse, secure: boolean): void {
    if (this.ended) return writeResponse(res, 200, terminalBody('item-not-found'), this.contentType);
    // A session created over HTTPS is not continued over plain HTTP.
    if (this.secure && !secure) return writeResponse(res, this.status('item-not-found'), terminalBody('item-not-found'), this.contentType);
    const rid = parseRid(body.attrs.rid);
    if (rid === undefined) return this.fail('bad-request', 'missing or invalid rid', res);
    if (rid <= this.lastRid) return this.repeat(rid, res);
    const special = body.attrs.type === 'terminate' || body.attrs.pause !== undefined;
    // XEP-0124 §14.2: the window is as wide as the number of simultaneous requests allowed
    // (one more for a pause or terminate request, which §12 lets a client add).
    if (rid > this.lastRid + this.requests + (special ? 1 : 0)) return this.fail('item-not-found', `rid ${rid} is outside the window`, res);
    const dup = this.pending.get(rid);
    if (dup) return this.replaceOpen(dup, res);
    const now = Date.now();
    if (!special) {
      const open = this.held.length + this.pending.size + 1;
      if (open > this.requests) return this.fail('policy-violation', 'too many simultaneous requests', res);
      const empty = isEmptyRequest(body);
      if (empty && this.requests > 1 && open >= this.requests && now - this.lastArrivalAt < this.polling * 1000) {
        return this.fail('policy-violation', 'requests too frequent', res);
      }
      const p = this.lastPoll;
      if (empty && this.effectiveHold === 0 && p && p.empty && p.answeredEmpty && now - p.arrivedAt < this.polling * 1000) {
        return this.fail('policy-violation', 'polling too frequently', res);
      }
    }
    this.lastArrivalAt = now;
    const entry: Pending = { rid, res, repeats: 0, body };
    this.pending.set(rid, entry);
    this.watch(res, entry);
    this.drain();
  }

  /** Called about every second by the service: inactivity (XEP-0124 §12) and the session's own timers. */
  checkTimers(now: number): void {
    if (this.ended) return;
    if (this.held.length === 0 && this.pending.size === 0 && now - this.lastResponseAt > this.inactivityMs) {
      this.log.debug({ session: this.c2s.id }, 'BOSH session inactive');
      // Ended without telling the client; a later request is answered as for an unknown sid.
      this.finish([], undefined, undefined);
      return;
    }
    this.c2s.checkTimers(now);
  }

  /** Ends the stream (service shutdown, admin kick): with `error`, a terminal body as for any stream error. */
  close(error?: StreamError): void {
    if (this.ended) return;
    this.c2s.close(error);
    if (!this.ended) this.streamClosed(error);
  }

  /** Ends the session with a terminal binding condition (XEP-0124 §17.2). */
  terminate(condition: TerminalCondition, reason: string): void {
    this.fail(condition, reason);
  }

  // ---- request processing -----------------------------------------------------------

  /** Processes the pending requests that are next in rid order. */
  private drain(): void {
    while (!this.ended && !this.paused) {
      const next = this.pending.get(this.lastRid + 1);
      if (!next) return;
      this.pending.delete(next.rid);
      this.lastRid = next.rid;
      this.process(next);
    }
  }

  private process(req: Pending): void {
    const body = req.body;
    const now = Date.now();
    const h: Held = { rid: req.rid, res: req.res, repeats: req.repeats, timer: undefined, empty: isEmptyRequest(body), arrivedAt: now };
    this.watch(req.res, h);
    this.held.push(h);
    // The client asked to terminate: later requests only wait for the end (and get empty bodies).
    if (this.terminating) return;
    // XEP-0124 §15: key sequencing, when the client started one.
    if (this.key !== undefined) {
      const k = body.attrs.key;
      if (k === undefined || sha1hex(k.toLowerCase()) !== this.key) return this.fail('item-not-found', 'invalid key');
    }
    const nextKey = body.attrs.newkey ?? body.attrs.key;
    if (nextKey !== undefined) this.key = nextKey.toLowerCase();
    this.inactivityMs = this.inactivity * 1000; // a pause ends with the next request
    this.transport.input.onActivity();

    if (xboshAttr(body, 'restart') === 'true') this.transport.input.onOpen(this.streamAttrs(body), 'stream:stream');
    const payloads = body.elements;
    for (const el of payloads) {
      if (this.ended) return;
      this.transport.input.onElement(qualifyPayload(el));
    }
    if (this.ended) return;

    if (body.attrs.type === 'terminate') return this.clientTerminate(payloads.length > 0);
    const pause = parseUint(body.attrs.pause);
    if (pause !== undefined) return this.pause(pause);

    while (this.held.length > this.effectiveHold) this.answerFront(true);
    if (this.held.includes(h)) {
      h.timer = setTimeout(() => this.expire(h), this.wait * 1000);
      h.timer.unref();
    }
    if (this.outbox.length > 0) this.scheduleFlush();
  }

  /** XEP-0124 §14.3: a rid already received. */
  private repeat(rid: number, res: ServerResponse): void {
    const cached = this.cache.get(rid);
    if (cached) {
      if (++cached.repeats > MAX_REPEATS) return this.fail('policy-violation', 'too many repeated requests', res);
      return writeResponse(res, cached.status, cached.body, this.contentType);
    }
    const h = this.held.find((o) => o.rid === rid);
    if (h) return this.replaceOpen(h, res);
    this.fail('item-not-found', `no answer to resend for rid ${rid}`, res);
  }

  /** The same rid again while its first copy is unanswered: that one gets a recoverable error, the new one takes its place. */
  private replaceOpen(o: Open, res: ServerResponse): void {
    if (++o.repeats > MAX_REPEATS) return this.fail('policy-violation', 'too many repeated requests', res);
    writeResponse(o.res, 200, renderBody({ type: 'error' }), this.contentType);
    o.res = res;
    this.watch(res, o);
  }

  /** XEP-0124 §12: answer every open request at once (without payloads) and allow a longer silence. */
  private pause(seconds: number): void {
    while (this.held.length > 0) this.answerFront(false);
    this.inactivityMs = Math.min(seconds, this.maxPause) * 1000;
  }

  /**
   * XEP-0124 §13: the client ends the session. Its payloads (typically unavailable
   * presence) MUST reach the server first: the session handles stanzas in order, so a ping
   * sent after them comes back once they are done, and only then is the stream closed.
   */
  private clientTerminate(hadPayloads: boolean): void {
    this.terminating = true;
    const close = () => {
      if (!this.ended) this.transport.input.onClose();
    };
    // Only a bound session routes stanzas; before that they are dropped with the stream, as
    // over TCP. (A session resumed with XEP-0198 lives on in another C2sSession object: ours
    // then reads as closed while the BOSH session still carries the stream.)
    if (!hadPayloads || !(this.c2s.isBound || this.c2s.closed)) return close();
    const id = 'bosh-terminate-' + randomBytes(6).toString('hex');
    const timer = setTimeout(close, TERMINATE_FLUSH_MS);
    timer.unref();
    this.transport.expectReply(id, () => {
      clearTimeout(timer);
      close();
    });
    this.transport.input.onElement(x('iq', { type: 'get', id, xmlns: NS_CLIENT }, x('ping', { xmlns: NS_PING })));
  }

  private streamAttrs(body: Element): Attrs {
    const attrs: Attrs = { xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM, version: xboshAttr(body, 'version') ?? this.xmppVersion };
    const to = body.attrs.to ?? this.to;
    if (to !== undefined) attrs.to = to;
    const lang = body.attrs['xml:lang'] ?? this.lang;
    if (lang !== undefined) attrs['xml:lang'] = lang;
    return attrs;
  }

  // ---- answers ----------------------------------------------------------------------

  private push(p: Payload): void {
    if (this.ended) return;
    this.outbox.push(p);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.terminating) return;
    this.flushScheduled = true;
    // A tick's worth of payloads goes out in one response.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Payloads are waiting: answer the oldest held request whose client is still connected. */
  private flush(): void {
    if (this.ended || this.terminating) return;
    while (this.outbox.length > 0 && this.held.length > 0) {
      const live = isAlive(this.held[0]!.res);
      this.answerFront(true);
      if (live) return;
    }
  }

  /** The held request's 'wait' ran out: it (and any older one) is answered, empty if nothing is queued. */
  private expire(h: Held): void {
    h.timer = undefined;
    if (this.ended || this.terminating) return;
    while (this.held.length > 0 && this.held[0]!.rid <= h.rid) this.answerFront(true);
  }

  private answerFront(withPayloads: boolean): void {
    const h = this.held.shift();
    if (h) this.answer(h, withPayloads);
  }

  /** Answers one request (already removed from `held`) and remembers the answer for resends. */
  private answer(h: Held, withPayloads: boolean, attrs: Record<string, string | number | undefined> = {}): void {
    if (h.timer) clearTimeout(h.timer);
    // Payloads only go to a client that is still there to read them; a dead connection
    // gets an empty body, so the payloads wait for its next request.
    let payloads: Payload[] = [];
    if (withPayloads && isAlive(h.res) && this.outbox.length > 0) {
      payloads = this.outbox;
      this.outbox = [];
    }
    const xbosh = Object.keys(attrs).some((k) => k.startsWith('xmpp:'));
    const body = renderBody(attrs, payloads, { xbosh, streamNs: xbosh });
    this.remember(h.rid, body, 200);
    this.lastResponseAt = Date.now();
    this.lastPoll = { arrivedAt: h.arrivedAt, empty: h.empty, answeredEmpty: payloads.length === 0 };
    writeResponse(h.res, 200, body, this.contentType);
  }

  private remember(rid: number, body: string, status: number): void {
    this.cache.set(rid, { body, status, repeats: 0 });
    while (this.cache.size > this.requests + 1) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  /** Forgets a response object once its connection closes, so nothing is written to it. */
  private watch(res: ServerResponse | undefined, o: Open): void {
    res?.once('close', () => {
      if (o.res === res && !res.writableEnded) o.res = undefined;
    });
  }

  // ---- ending -------------------------------------------------------------------------

  private status(condition: TerminalCondition): number {
    return this.legacy ? LEGACY_STATUS[condition] ?? 200 : 200;
  }

  /** A terminal binding condition (XEP-0124 §17.2): the session ends and the client is told so on every open request. */
  private fail(condition: TerminalCondition, reason: string, extra?: ServerResponse): void {
    if (this.ended) return writeResponse(extra, 200, terminalBody(condition), this.contentType);
    this.log.info({ session: this.c2s.id, address: this.address, condition, reason }, 'BOSH session terminated');
    const body = terminalBody(condition);
    const status = this.status(condition);
    this.finish(extra ? [extra] : [], { body, status }, undefined);
  }

  /** The C2sSession ended its stream: graceful close, stream error, or system shutdown. */
  private streamClosed(err: StreamError | undefined): void {
    if (this.ended) return;
    const payloads = this.outbox;
    this.outbox = [];
    if (err === undefined) {
      // XEP-0124 §13: the oldest open request acknowledges the end, the others get empty
      // bodies. Whatever is still queued is dropped: clients stop reading at a terminate
      // body (stanza.io even fails on payloads after it), and this client asked to leave.
      this.finish([], { body: renderBody({ type: 'terminate' }), status: 200 }, renderBody({}));
      return;
    }
    // XEP-0206 §6: stream errors travel as remote-stream-error with the <stream:error/>
    // after any stanzas; shutting down is XEP-0124's own system-shutdown condition.
    const body = err.condition === 'system-shutdown'
      ? terminalBody('system-shutdown', payloads)
      : terminalBody('remote-stream-error', [...payloads, { xml: err.toElement().toString(), streamPrefix: true }]);
    this.finish([], { body, status: 200 }, undefined);
  }

  /**
   * Ends the BOSH session: every open request is answered in rid order (the first with
   * `last.body`, the rest with `others`, or also `last.body` when not given), the service
   * forgets the session, and the C2sSession learns that its connection is gone.
   */
  private finish(extra: ServerResponse[], last: { body: string; status: number } | undefined, others: string | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.outbox = [];
    const open: (ServerResponse | undefined)[] = [];
    for (const h of this.held) {
      if (h.timer) clearTimeout(h.timer);
      open.push(h.res);
    }
    for (const p of [...this.pending.values()].sort((a, b) => a.rid - b.rid)) open.push(p.res);
    open.push(...extra);
    this.held = [];
    this.pending.clear();
    if (last) {
      open.forEach((res, i) => {
        if (i === 0 || others === undefined) writeResponse(res, last.status, last.body, this.contentType);
        else writeResponse(res, 200, others, this.contentType);
      });
    }
    this.host.ended(this, last);
    if (!this.disconnected) {
      this.disconnected = true;
      this.transport.input.onDisconnect();
    }
  }
}
