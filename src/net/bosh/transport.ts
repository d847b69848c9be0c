import type { Element, Attrs } from '../../xml/element';
import type { StreamError } from '../../errors';
import type { ChannelBindingType } from '../../sasl';
import type { Transport, TransportEvents } from '../../stream/transport';
import { NS_CLIENT, type Payload } from './body';

/** What the transport needs from the BOSH session that owns it. */
export interface BoshSink {
  /** The session opened (or re-opened) its stream: 'from' and 'id' (authid) of the header. */
  streamOpened(attrs: Attrs): void;
  /** A payload for the client, to go out in the next response. */
  push(payload: Payload): void;
  /** The session ends its stream, with a stream error when given. */
  closeStream(error?: StreamError): void;
  /** Backpressure from the session: stop (or resume) processing request bodies. */
  setPaused(paused: boolean): void;
}

/**
 * XEP-0206: one C2sSession's stream carried in BOSH <body/> wrappers. There is no parser
 * state (each request body is parsed whole) and no TLS to upgrade (that is HTTPS's job), so
 * this is a thin adapter: elements out become serialised payloads, with 'jabber:client' on
 * stanzas since a <body/> does not set it as the default namespace.
 */
export class BoshTransport implements Transport {
  readonly canStartTls = false;
  private events: TransportEvents | undefined;
  private ended = false;
  private readonly expected = new Map<string, () => void>();

  constructor(readonly remoteAddress: string, readonly secure: boolean, private readonly sink: BoshSink) {}

  /** The session's input callbacks, for the BOSH session to drive. */
  get input(): TransportEvents {
    if (!this.events) throw new Error('BoshTransport: no session attached');
    return this.events;
  }

  attach(events: TransportEvents): void {
    this.events = events;
  }

  openStream(attrs: Attrs): void {
    this.sink.streamOpened(attrs);
  }

  send(el: Element): void {
    if (this.ended) return;
    if (el.name === 'iq' && el.attrs.id !== undefined && (el.attrs.type === 'result' || el.attrs.type === 'error')) {
      const done = this.expected.get(el.attrs.id);
      if (done) {
        this.expected.delete(el.attrs.id);
        done();
        return;
      }
    }
    const stanza = el.name === 'message' || el.name === 'presence' || el.name === 'iq';
    const out = stanza && el.attrs.xmlns === undefined ? el.withAttrs({ xmlns: NS_CLIENT }) : el;
    this.sink.push({ xml: out.toString(), streamPrefix: el.name.startsWith('stream:') });
  }

  /**
   * Swallows the session's answer to an IQ we injected (see BoshSession's terminate
   * handling) and calls `done` when it arrives.
   */
  expectReply(id: string, done: () => void): void {
    this.expected.set(id, done);
  }

  closeWithError(err: StreamError): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.closeStream(err);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.closeStream();
  }

  /** XEP-0206 §5: the restart is a request attribute, handled by the BOSH session; no parser to reset. */
  restart(): void {}

  async startTls(): Promise<void> {
    throw new Error('STARTTLS is not available over BOSH: use HTTPS');
  }

  /** TLS ends at the HTTP layer (possibly at a proxy), so no channel binding is offered. */
  channelBindings(): Map<ChannelBindingType, Buffer> {
    return new Map();
  }

  pause(): void {
    this.sink.setPaused(true);
  }

  resume(): void {
    this.sink.setPaused(false);
  }
}
