/**
 * JIDs per RFC 7622. Parsing normalises every part (localpart: PRECIS UsernameCaseMapped,
 * resourcepart: PRECIS OpaqueString, domainpart: IP literal or IDNA2008 U-labels, lower-cased,
 * trailing dot stripped), so two JIDs are equal exactly when their strings are equal.
 */
import { enforceDomainName } from './precis/idna';
import { PrecisError, enforceOpaqueString, enforceUsernameCaseMapped } from './precis/index';

export class JidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JidError';
  }
}

export class Jid {
  /** Empty string when absent. */
  readonly local: string;
  readonly domain: string;
  /** Empty string when absent. */
  readonly resource: string;
  private str: string | undefined;
  private bareStr: string | undefined;

  /** Trusted constructor: parts must already be normalised. Use `Jid.parse` for input. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  static parse(s: string): Jid {
    if (s.length === 0) throw new JidError('empty JID');
    const slash = s.indexOf('/');
    const beforeResource = slash === -1 ? s : s.slice(0, slash);
    const resource = slash === -1 ? undefined : s.slice(slash + 1);
    const at = beforeResource.indexOf('@');
    const local = at === -1 ? undefined : beforeResource.slice(0, at);
    const domain = at === -1 ? beforeResource : beforeResource.slice(at + 1);
    return new Jid(
      local === undefined ? '' : prepareLocalpart(local),
      prepareDomainpart(domain),
      resource === undefined ? '' : prepareResourcepart(resource),
    );
  }

  /** Parses, returning undefined instead of throwing. */
  static tryParse(s: string | undefined): Jid | undefined {
    if (s === undefined) return undefined;
    try {
      return Jid.parse(s);
    } catch {
      return undefined;
    }
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  /** True for a server or component address: no localpart, no resource. */
  get isDomain(): boolean {
    return this.local === '' && this.resource === '';
  }

  bare(): Jid {
    return this.resource === '' ? this : new Jid(this.local, this.domain);
  }

  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, resource);
  }

  equals(other: Jid | undefined): boolean {
    return other !== undefined && this.toString() === other.toString();
  }

  /**
   * The bare JID as a string: the key stores and session tables use. Made once: a routed
   * message asks for it a dozen times, mostly as a Map key, and a string made anew each time
   * would be hashed anew each time too.
   */
  get bareString(): string {
    return (this.bareStr ??= this.local === '' ? this.domain : this.local + '@' + this.domain);
  }

  toString(): string {
    if (this.str === undefined) {
      const bare = this.bareString;
      this.str = this.resource === '' ? bare : bare + '/' + this.resource;
    }
    return this.str;
  }
}

const MAX_PART_BYTES = 1023;

/** Printable ASCII less the characters RFC 7622 §3.3.1 forbids in a localpart: " & ' / : < > @ */
const RE_ASCII_LOCALPART = /^[\x21\x23-\x25\x28-\x2e\x30-\x39\x3b\x3d\x3f\x41-\x7e]+$/;
const RE_LOCALPART_FORBIDDEN = /["&'/:<>@]/;
/** Printable ASCII and space: valid OpaqueString, unchanged by it. */
const RE_ASCII_RESOURCEPART = /^[\x20-\x7e]+$/;

function checkLength(part: string, what: string): void {
  if (part.length === 0) throw new JidError(`empty ${what}`);
  // A UTF-16 string takes at most 3 UTF-8 bytes per code unit: count only when it may matter.
  if (part.length > MAX_PART_BYTES / 3 && Buffer.byteLength(part, 'utf8') > MAX_PART_BYTES) {
    throw new JidError(`${what} longer than 1023 bytes`);
  }
}

/**
 * No mapping of these profiles deletes code points, and NFC composes at most a handful of code
 * points into one of two or three bytes, so a string of more than 8 * 1023 UTF-16 code units
 * cannot come out at 1023 bytes or fewer: refuse it before doing Unicode work on it.
 */
const MAX_INPUT_UNITS = 8 * MAX_PART_BYTES;

function precis<T>(what: string, input: string, f: () => T): T {
  if (input.length > MAX_INPUT_UNITS) throw new JidError(`${what} longer than 1023 bytes`);
  try {
    return f();
  } catch (e) {
    if (e instanceof PrecisError) throw new JidError(`invalid ${what}: ${e.message}`);
    throw e;
  }
}

/**
 * RFC 7622 §3.3: PRECIS UsernameCaseMapped (width mapping, lower case, NFC, Bidi Rule,
 * IdentifierClass), then none of the characters JIDs reserve. 1 to 1023 bytes.
 */
export function prepareLocalpart(s: string): string {
  if (RE_ASCII_LOCALPART.test(s)) {
    checkLength(s, 'localpart');
    return s.toLowerCase();
  }
  const out = precis('localpart', s, () => enforceUsernameCaseMapped(s));
  if (RE_LOCALPART_FORBIDDEN.test(out)) throw new JidError('localpart contains a forbidden character');
  checkLength(out, 'localpart');
  return out;
}

/** RFC 7622 §3.4: PRECIS OpaqueString (non-ASCII spaces to U+0020, NFC, FreeformClass). 1 to 1023 bytes. */
export function prepareResourcepart(s: string): string {
  const out = RE_ASCII_RESOURCEPART.test(s) ? s : precis('resourcepart', s, () => enforceOpaqueString(s));
  checkLength(out, 'resourcepart');
  return out;
}

/**
 * RFC 7622 §3.2: an IP literal ([IPv6] or dotted IPv4) as it is, otherwise full stops mapped to
 * '.', width-mapped, lower-cased, NFC, IDNA2008-checked, A-labels turned into U-labels; one
 * trailing dot stripped. 1 to 1023 bytes.
 */
export function prepareDomainpart(s: string): string {
  const out = precis('domainpart', s, () => enforceDomainName(s));
  checkLength(out, 'domainpart');
  return out;
}
