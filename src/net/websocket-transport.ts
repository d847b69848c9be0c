import type { TLSSocket } from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import { Element, type Attrs } from '../xml/element';
import { parseXml } from '../xml/parse';
import { DEFAULT_PARSER_LIMITS, type StreamParserLimits } from '../xml/stream-parser';
import { StreamError } from '../errors';
import { channelBindings, type ChannelBindingType } from '../sasl';
import type { Transport, TransportEvents } from '../stream/transport';
import { NS_STREAM } from './tcp-transport';

/** RFC 7395 §3.3.2: the namespace of <open/> and <close/>. */
export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const NS_CLIENT = 'jabber:client';
/** A client that does not answer our <close/> with its own in this time is disconnected. */
const CLOSE_WAIT_MS = 1000;
/** A peer that never finishes the WebSocket closing handshake is cut off after this. */
const TERMINATE_MS = 5000;

export interface WebSocketTransportOptions {
  /** The client's address (from X-Forwarded-For when a trusted proxy forwarded it). */
  remoteAddress: string;
  /** wss://, TLS terminated by a trusted proxy, or loopback. */
  secure: boolean;
  /**
   * Why this plain connection may not log in (not loopback, no trusted proxy, http.allowInsecure
   * off): the client's <open/> is answered with this <policy-violation/>. Undefined: allowed.
   */
  refuse?: string;
  /** The TLS socket when the client speaks wss:// straight to us: SCRAM-PLUS channel binding. */
  tlsSocket?: TLSSocket;
  limits: Partial<StreamParserLimits>;
}

/**
 * RFC 7395: XMPP over WebSocket. Every message is one complete XML element: <open/> and
 * <close/> in the framing namespace stand for the stream header and footer, everything
 * else is a stanza or nonza. The session sees what it sees over TCP: onOpen with a
 * <stream:stream> header in jabber:client, then top-level elements; what it sends goes
 * out with the namespace declarations a standalone message needs.
 */
export class WebSocketTransport implements Transport {
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly canStartTls = false;
  private events: TransportEvents | undefined;
  private readonly limits: StreamParserLimits;
  /** The next message must be <open/>: at the start and after a stream restart (RFC 7395 §3.4-§3.5). */
  private awaitingOpen = true;
  /** A stream error was reported: further input is ignored while the session closes. */
  private failed = false;
  /** We sent <close/>. */
  private ended = false;
  /** The client sent <close/>. */
  private peerClosed = false;
  private disconnected = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ws: WebSocket, private readonly opts: WebSocketTransportOptions) {
    this.remoteAddress = opts.remoteAddress;
    this.secure = opts.secure;
    this.limits = { ...DEFAULT_PARSER_LIMITS, ...opts.limits };
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => this.events?.onActivity());
    ws.on('error', () => { /* 'close' follows */ });
    ws.on('close', () => this.disconnect());
  }

  attach(events: TransportEvents): void {
    this.events = events;
  }

  openStream(attrs: Attrs): void {
    this.write(new Element('open', { xmlns: NS_FRAMING, ...attrs }).toString());
  }

  send(el: Element): void {
    this.write(frame(el).toString());
  }

  closeWithError(err: StreamError): void {
    if (this.ended) return;
    // RFC 7395 §3.6: the error in its own message, then <close/>, then the connection goes.
    this.send(err.toElement());
    this.peerClosed = true; // no need to wait for the client's <close/> after an error
    this.close();
  }

  close(): void {
    if (this.ended || this.disconnected) return;
    this.write(`<close xmlns="${NS_FRAMING}"/>`);
    this.ended = true;
    if (this.peerClosed) this.closeSocket();
    else this.closeTimer = setTimeout(() => this.closeSocket(), CLOSE_WAIT_MS).unref();
  }

  restart(): void {
    this.awaitingOpen = true;
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not available over WebSocket (RFC 7395 §3.5: use wss://)'));
  }

  channelBindings(): Map<ChannelBindingType, Buffer> {
    return this.opts.tlsSocket ? channelBindings(this.opts.tlsSocket) : new Map();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.disconnected) return;
    this.events?.onActivity();
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (this.ended) {
      // We closed the stream: the client's <close/> completes the handshake; anything else is dropped.
      if (!this.failed && /^\s*<close[\s/>]/.test(buf.toString('utf8', 0, 64))) this.closeSocket();
      return;
    }
    if (this.failed) return;
    if (isBinary) return this.fail(new StreamError('bad-format', 'XMPP over WebSocket uses text messages (RFC 7395 §3.3.3)'));
    if (buf.length > this.limits.maxStanzaBytes) {
      return this.fail(new StreamError('policy-violation', `A message may have at most ${this.limits.maxStanzaBytes} bytes`));
    }
    const text = buf.toString('utf8');
    // Whitespace between elements means nothing in XML; some clients send it as a keepalive.
    if (isBlank(text)) return;
    let el: Element;
    try {
      el = parseXml(text, this.limits);
    } catch (err) {
      return this.fail(err instanceof StreamError ? err : new StreamError('not-well-formed', 'A message must be exactly one XML element (RFC 7395 §3.3.3)'));
    }
    if (el.attrs.xmlns === NS_FRAMING && el.name === 'open') return this.onOpen(el);
    if (el.attrs.xmlns === NS_FRAMING && el.name === 'close') {
      this.peerClosed = true;
      this.events?.onClose();
      return;
    }
    if (this.awaitingOpen) {
      return this.fail(new StreamError('invalid-namespace', `Expected <open xmlns='${NS_FRAMING}'/> to open the stream (RFC 7395 §3.4)`));
    }
    // RFC 7395 §3.3.3 wants every stanza to declare jabber:client; as over TCP, it is the default.
    if (el.attrs.xmlns === undefined && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) el.attrs.xmlns = NS_CLIENT;
    this.events?.onElement(el);
  }

  private onOpen(el: Element): void {
    if (!this.awaitingOpen) return this.fail(new StreamError('bad-format', '<open/> comes only at the start and after a stream restart'));
    this.awaitingOpen = false;
    if (this.opts.refuse !== undefined) return this.fail(new StreamError('policy-violation', this.opts.refuse));
    const { xmlns: _framing, ...attrs } = el.attrs;
    // What the session checks over TCP: <stream:stream xmlns='jabber:client' xmlns:stream='...'>.
    this.events?.onOpen({ ...attrs, xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM }, 'stream:stream');
  }

  private fail(err: StreamError): void {
    this.failed = true;
    this.events?.onStreamError(err);
  }

  private write(s: string): void {
    if (this.ended || this.disconnected || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(s);
  }

  private closeSocket(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), TERMINATE_MS).unref();
  }

  private disconnect(): void {
    if (this.disconnected) return;
    this.disconnected = true;
    this.ended = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.events?.onDisconnect();
  }
}

/** A standalone message (RFC 7395 §3.3.3): stanzas declare jabber:client, stream: elements their prefix. */
/**
 * RFC 7395 §3.6.1: this endpoint is not the place; the client is sent to `uri` with
 * <close see-other-uri/> at once (which clients take as the answer to their <open/>).
 */
export function redirectWebSocket(ws: WebSocket, uri: string): void {
  ws.on('error', () => { /* 'close' follows */ });
  ws.send(new Element('close', { xmlns: NS_FRAMING, 'see-other-uri': uri }).toString());
  ws.close(1000);
  setTimeout(() => ws.terminate(), TERMINATE_MS).unref();
}

function frame(el: Element): Element {
  if (el.name.startsWith('stream:')) {
    return el.attrs['xmlns:stream'] === undefined ? new Element(el.name, { 'xmlns:stream': NS_STREAM, ...el.attrs }, el.children) : el;
  }
  if (el.attrs.xmlns === undefined) return new Element(el.name, { xmlns: NS_CLIENT, ...el.attrs }, el.children);
  return el;
}

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}
