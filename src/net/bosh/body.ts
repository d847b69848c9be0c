/**
 * The BOSH <body/> wrapper (XEP-0124 §4, XEP-0206 §2): parsing a request body, reading its
 * attributes, and writing response bodies around payloads that are already serialised.
 */
import { isUtf8 } from 'node:buffer';
import { Element, type Attrs } from '../../xml/element';
import { parseXml } from '../../xml/parse';
import type { StreamParserLimits } from '../../xml/stream-parser';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';
export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_CLIENT = 'jabber:client';

/** The BOSH version this connection manager implements (XEP-0124 1.11). */
export const BOSH_VERSION = '1.11';

/** XEP-0124 §17.2 terminal binding conditions. */
export type TerminalCondition =
  | 'bad-request' | 'host-gone' | 'host-unknown' | 'improper-addressing' | 'internal-server-error'
  | 'item-not-found' | 'other-request' | 'policy-violation' | 'remote-connection-failed'
  | 'remote-stream-error' | 'see-other-uri' | 'system-shutdown' | 'undefined-condition';

/**
 * XEP-0124 §17.1: the deprecated HTTP codes that legacy clients (no 'ver' in their session
 * creation request) expect instead of three of the terminal conditions.
 */
export const LEGACY_STATUS: Partial<Record<TerminalCondition, number>> = {
  'bad-request': 400,
  'policy-violation': 403,
  'item-not-found': 404,
};

/** 2^53 - 1 (XEP-0124 §14.1): the largest 'rid' a client may use. */
const MAX_RID = Number.MAX_SAFE_INTEGER;

export class BodyError extends Error {
  constructor(readonly condition: TerminalCondition, message: string) {
    super(message);
    this.name = 'BodyError';
  }
}

/**
 * Parses one HTTP request body into its <body/> element. Throws BodyError('bad-request')
 * for anything that is not one well-formed, restricted-XML, UTF-8 <body/> in the httpbind
 * namespace.
 */
export function parseBody(buf: Buffer, limits: Partial<StreamParserLimits>): Element {
  if (!isUtf8(buf)) throw new BodyError('bad-request', 'The request body is not UTF-8');
  let el: Element;
  try {
    el = parseXml(buf.toString('utf8'), limits);
  } catch (err) {
    throw new BodyError('bad-request', `The request body is not acceptable XML: ${(err as Error).message}`);
  }
  if (el.name !== 'body' || el.attrs.xmlns !== NS_HTTPBIND) {
    throw new BodyError('bad-request', `The root element must be <body xmlns='${NS_HTTPBIND}'/>`);
  }
  return el;
}

/** The 'rid' as a number, or undefined when it is missing or not an integer in 1..2^53-1. */
export function parseRid(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= MAX_RID ? n : undefined;
}

/** A non-negative integer attribute, or undefined when absent or malformed. */
export function parseUint(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/**
 * An attribute in the urn:xmpp:xbosh namespace (XEP-0206 'xmpp:version', 'xmpp:restart'),
 * whatever prefix the client bound to it.
 */
export function xboshAttr(el: Element, local: string): string | undefined {
  for (const k in el.attrs) {
    if (k.startsWith('xmlns:') && el.attrs[k] === NS_XBOSH) {
      const v = el.attrs[k.slice(6) + ':' + local];
      if (v !== undefined) return v;
    }
  }
  return undefined;
}

/** The payloads of a request body: its child elements (whitespace between them is ignored). */
export function payloadsOf(body: Element): Element[] {
  return body.elements;
}

/**
 * XEP-0206 §2: stanzas in a body are in 'jabber:client'; many clients leave the namespace
 * out (it is then, strictly, the httpbind one), so an element with none gets jabber:client.
 */
export function qualifyPayload(el: Element): Element {
  if (el.attrs.xmlns === undefined || el.attrs.xmlns === NS_HTTPBIND) el.attrs.xmlns = NS_CLIENT;
  return el;
}

/** True for a request with nothing in it: no payloads and no restart, pause or terminate. */
export function isEmptyRequest(body: Element): boolean {
  return body.elements.length === 0 && body.attrs.type !== 'terminate' && body.attrs.pause === undefined
    && xboshAttr(body, 'restart') !== 'true';
}

/** One payload waiting to go out, serialised, and whether it uses the stream: prefix. */
export interface Payload {
  xml: string;
  streamPrefix: boolean;
}

/**
 * Writes a response <body/> around serialised payloads. `xmlns:stream` is declared when a
 * payload needs it (XEP-0206 §2: <stream:features/>, <stream:error/>) or when asked.
 */
export function renderBody(attrs: Record<string, string | number | undefined>, payloads: readonly Payload[] = [], opts: { streamNs?: boolean; xbosh?: boolean } = {}): string {
  const a: Attrs = { xmlns: NS_HTTPBIND };
  if (opts.xbosh) a['xmlns:xmpp'] = NS_XBOSH;
  if (opts.streamNs || payloads.some((p) => p.streamPrefix)) a['xmlns:stream'] = NS_STREAM;
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) a[k] = String(v);
  }
  const open = new Element('body', a).openTag();
  if (payloads.length === 0) return open.slice(0, -1) + '/>';
  let s = open;
  for (const p of payloads) s += p.xml;
  return s + '</body>';
}

/** A terminal binding condition body (XEP-0124 §17.2), optionally with payloads (stanzas, then a <stream:error/>). */
export function terminalBody(condition: TerminalCondition | undefined, payloads: readonly Payload[] = []): string {
  return renderBody({ type: 'terminate', condition }, payloads);
}
