import type { Element, Attrs } from '../xml/element';
import type { StreamError } from '../errors';
import type { ChannelBindingType } from '../sasl';

/**
 * What a client session needs from its connection, whatever the framing: TCP streams
 * (RFC 6120) or WebSocket messages (RFC 7395). The transport owns its parser and reports
 * the stream's open, elements, close and errors to the session.
 */
export interface Transport {
  readonly remoteAddress: string;
  /** Encrypted now (direct TLS, after STARTTLS, or TLS terminated by a trusted proxy). */
  readonly secure: boolean;
  /** STARTTLS can be offered (a plain TCP stream that has not upgraded yet). */
  readonly canStartTls: boolean;
  /** Wire the session's input callbacks; called once. */
  attach(events: TransportEvents): void;
  /** Send the stream header (TCP: <stream:stream>, WebSocket: <open/>). */
  openStream(attrs: Attrs): void;
  send(el: Element): void;
  /** Send a stream error, close the stream and the connection. */
  closeWithError(err: StreamError): void;
  /** Close the stream gracefully and then the connection. */
  close(): void;
  /** Forget the parser state: the client opens a new stream (after STARTTLS or SASL). */
  restart(): void;
  /** Upgrade to TLS in place after <proceed/> (only when canStartTls). */
  startTls(): Promise<void>;
  channelBindings(): Map<ChannelBindingType, Buffer>;
  /** Stop reading (backpressure while the session catches up) and resume. */
  pause(): void;
  resume(): void;
}

export interface TransportEvents {
  onOpen(attrs: Attrs, qualifiedName: string): void;
  onElement(el: Element): void;
  /** The client closed its stream. */
  onClose(): void;
  /** Malformed input or a limit hit: the transport has not closed yet; the session decides. */
  onStreamError(err: StreamError): void;
  /** The connection is gone (after close, error, or the peer hanging up). Called once. */
  onDisconnect(): void;
  /** Bytes arrived (any, including whitespace keepalives): resets idle timers. */
  onActivity(): void;
}
