import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { Element, type Attrs } from '../xml/element';
import { StreamParser, type StreamParserLimits } from '../xml/stream-parser';
import type { StreamError } from '../errors';
import { channelBindings, type ChannelBindingType } from '../sasl';
import type { Transport, TransportEvents } from '../stream/transport';

export const NS_STREAM = 'http://etherx.jabber.org/streams';

/** Read shaping for one connection: a token bucket of `burstBytes` refilled at `bytesPerSecond`. */
export interface ShaperOptions {
  bytesPerSecond: number;
  burstBytes: number;
  /** Called each time reading is paused because the connection went over the rate. */
  onShaped?: () => void;
}

/**
 * RFC 6120 over TCP: one XML stream per direction, STARTTLS in place, and writes
 * coalesced per tick so that a burst of stanzas costs one syscall.
 */
export class TcpTransport implements Transport {
  readonly remoteAddress: string;
  private socket: Socket;
  private readonly parser: StreamParser;
  private events: TransportEvents | undefined;
  private outbox: string[] = [];
  private flushScheduled = false;
  private ended = false;
  private disconnected = false;
  private tls: boolean;
  /** The session asked to stop reading (backpressure). */
  private held = false;
  /** The shaper stopped reading until its timer fires. */
  private shapedTimer: NodeJS.Timeout | undefined;
  private tokens = 0;
  private refilledAt = 0;

  constructor(
    socket: Socket,
    private readonly secureContext: SecureContext | undefined,
    limits: Partial<StreamParserLimits>,
    private readonly shaper?: ShaperOptions,
  ) {
    this.socket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress);
    this.tls = socket instanceof TLSSocket;
    this.parser = new StreamParser({
      onOpen: (name, attrs) => this.events?.onOpen(attrs, name),
      onElement: (el) => this.events?.onElement(el),
      onClose: () => this.events?.onClose(),
      onError: (err) => this.events?.onStreamError(err),
    }, limits);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (shaper) {
      this.tokens = shaper.burstBytes;
      this.refilledAt = performance.now();
    }
    this.listen(socket);
  }

  get secure(): boolean {
    return this.tls;
  }

  get canStartTls(): boolean {
    return !this.tls && this.secureContext !== undefined;
  }

  attach(events: TransportEvents): void {
    this.events = events;
  }

  openStream(attrs: Attrs): void {
    const header = new Element('stream:stream', { ...attrs, xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM });
    this.write("<?xml version='1.0'?>" + header.openTag());
  }

  send(el: Element): void {
    this.write(el.toString());
  }

  closeWithError(err: StreamError): void {
    if (this.ended) return;
    this.write(err.toElement().toString());
    this.close();
  }

  close(): void {
    if (this.ended) return;
    this.write('</stream:stream>');
    this.ended = true;
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not keep the socket open forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  restart(): void {
    this.parser.reset();
  }

  async startTls(): Promise<void> {
    if (!this.canStartTls) throw new Error('STARTTLS is not available on this connection');
    this.flush();
    const raw = this.socket;
    // Only our own listeners move to the TLS socket; others (the listener's bookkeeping) stay.
    this.unlisten(raw);
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
    this.socket = secure;
    this.tls = true;
    this.parser.reset();
    this.listen(secure);
    if (this.held || this.shapedTimer) secure.pause();
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('connection closed during TLS handshake')));
    });
  }

  channelBindings(): Map<ChannelBindingType, Buffer> {
    return this.socket instanceof TLSSocket ? channelBindings(this.socket) : new Map();
  }

  pause(): void {
    this.held = true;
    this.socket.pause();
  }

  resume(): void {
    this.held = false;
    if (!this.shapedTimer) this.socket.resume();
  }

  /** Bytes read are always parsed; over the rate, the socket is paused until the bucket has refilled. */
  private shape(bytes: number): void {
    const shaper = this.shaper!;
    const now = performance.now();
    this.tokens = Math.min(shaper.burstBytes, this.tokens + ((now - this.refilledAt) * shaper.bytesPerSecond) / 1000);
    this.refilledAt = now;
    this.tokens -= bytes;
    if (this.tokens >= 0 || this.shapedTimer || this.disconnected) return;
    this.socket.pause();
    shaper.onShaped?.();
    this.shapedTimer = setTimeout(() => {
      this.shapedTimer = undefined;
      if (!this.held && !this.disconnected) this.socket.resume();
    }, Math.ceil((-this.tokens * 1000) / shaper.bytesPerSecond));
    this.shapedTimer.unref();
  }

  private readonly onData = (chunk: Buffer) => {
    this.events?.onActivity();
    if (this.shaper) this.shape(chunk.length);
    this.parser.write(chunk);
  };
  private readonly onError = () => this.socket.destroy();
  private readonly onEnd = () => {
    // The peer half-closed without </stream:stream>: finish our side too.
    if (!this.ended) this.close();
  };
  private readonly onSocketClose = () => this.disconnect();

  private listen(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onSocketClose);
  }

  private unlisten(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('end', this.onEnd);
    socket.off('close', this.onSocketClose);
  }

  private disconnect(): void {
    if (this.disconnected) return;
    this.disconnected = true;
    this.ended = true;
    if (this.shapedTimer) clearTimeout(this.shapedTimer);
    this.shapedTimer = undefined;
    this.outbox = [];
    this.events?.onDisconnect();
  }

  private write(s: string): void {
    if (this.ended || this.disconnected) return;
    this.outbox.push(s);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushTick);
    }
  }

  private readonly flushTick = () => this.flush();

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.socket.destroyed) return;
    const data = this.outbox.length === 1 ? this.outbox[0]! : this.outbox.join('');
    this.outbox = [];
    this.socket.write(data);
  }
}

/** '::ffff:127.0.0.1' → '127.0.0.1', so limits and logs see one address per client. */
export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
