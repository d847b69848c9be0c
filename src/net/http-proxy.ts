import { BlockList, isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseAddress } from './tcp-transport';

/**
 * Who is on the other end of an HTTP request or WebSocket: the peer itself, or, when the peer
 * is a trusted reverse proxy, the client it names in X-Forwarded-For (and whether that client
 * reached the proxy over TLS, from X-Forwarded-Proto).
 */

export interface AddressBlock {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** '10.0.0.0/8', '192.0.2.7', '::1' or 'fd00::/8' → the block; undefined when it is neither an address nor a CIDR block. */
export function parseAddressBlock(s: string): AddressBlock | undefined {
  const slash = s.indexOf('/');
  const address = normaliseAddress(slash === -1 ? s.trim() : s.slice(0, slash).trim());
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = s.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** An address set (http.trustedProxies). */
export class AddressList {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(blocks: readonly string[]) {
    for (const s of blocks) {
      const b = parseAddressBlock(s);
      if (!b) throw new Error(`not an IP address or CIDR block: ${s}`);
      this.list.addSubnet(b.address, b.prefix, b.family);
    }
    this.size = blocks.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const a = normaliseAddress(address);
    const v = isIP(a);
    return v !== 0 && this.list.check(a, v === 4 ? 'ipv4' : 'ipv6');
  }
}

const LOOPBACK = new AddressList(['127.0.0.0/8', '::1']);

export function isLoopback(address: string): boolean {
  return LOOPBACK.has(address);
}

export interface HttpClient {
  /** The client's address: the peer's, or the right-most untrusted X-Forwarded-For hop behind trusted proxies. */
  address: string;
  /** The socket's own peer (the proxy when there is one). */
  peer: string;
  /** A trusted proxy forwarded the request. */
  proxied: boolean;
  /**
   * The connection counts as encrypted: TLS to us; or a trusted proxy that did not say the client
   * came over plain http (X-Forwarded-Proto); or a plain connection from loopback.
   */
  secure: boolean;
  /** The scheme the client used, for URLs we hand back (host-meta): https when TLS to us or X-Forwarded-Proto says so. */
  scheme: 'http' | 'https';
  /** Host (and port) the client asked for: Host, or X-Forwarded-Host from a trusted proxy; undefined when missing or malformed. */
  host: string | undefined;
}

/** Resolves the client of a request that arrived from `peer` (over TLS when `tls`). */
export function resolveClient(peerAddress: string | undefined, tls: boolean, headers: IncomingHttpHeaders, proxies: AddressList): HttpClient {
  const peer = normaliseAddress(peerAddress);
  if (!proxies.has(peer)) {
    return { address: peer, peer, proxied: false, secure: tls || isLoopback(peer), scheme: tls ? 'https' : 'http', host: validHost(headers.host) };
  }
  // Walk X-Forwarded-For from the right: each trusted hop vouches for the one to its left.
  let address = peer;
  const hops = listHeader(headers['x-forwarded-for']);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = cleanHop(hops[i]!);
    if (hop === undefined) break;
    address = hop;
    if (!proxies.has(hop)) break;
  }
  // The right-most value is the one our proxy set (a client may have sent its own before it).
  const proto = listHeader(headers['x-forwarded-proto']).at(-1)?.toLowerCase();
  const forwardedTls = proto === 'https' || proto === 'wss';
  const forwardedPlain = proto === 'http' || proto === 'ws';
  const forwardedHost = validHost(listHeader(headers['x-forwarded-host']).at(-1));
  return {
    address,
    peer,
    proxied: true,
    secure: tls || !forwardedPlain,
    scheme: tls || forwardedTls ? 'https' : 'http',
    host: forwardedHost ?? validHost(headers.host),
  };
}

function listHeader(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** '192.0.2.1', '192.0.2.1:4711', '[2001:db8::1]:4711', '"[2001:db8::1]"' → the address; undefined for 'unknown' and other junk. */
function cleanHop(raw: string): string | undefined {
  let s = raw.replace(/^"|"$/g, '');
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) s = bracket[1]!;
  else if (/^[\d.]+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(':'));
  s = normaliseAddress(s);
  return isIP(s) === 0 ? undefined : s;
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function validHost(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const h = host.trim();
  return h.length <= 260 && HOST_RE.test(h) ? h : undefined;
}
