// XEP-0045 §7.2.14-15: discussion history sent on entering, with XEP-0203 delay stamps.
import { Element, x } from '../../src';
import { NS_DELAY } from './ns';

export interface HistoryEntry {
  /** The reflected message, without 'to'. */
  readonly message: Element;
  /** When the room received it (ms since the epoch). */
  readonly at: number;
  /** <delay xmlns='urn:xmpp:delay' from=room stamp=…/>, built once. */
  readonly delay: Element;
}

export function historyEntry(message: Element, at: number, roomJid: string): HistoryEntry {
  return { message, at, delay: x('delay', { xmlns: NS_DELAY, from: roomJid, stamp: new Date(at).toISOString() }) };
}

/** What the entering client asked for in <history/>; absent limits are undefined. */
export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  /** ms since the epoch. */
  since?: number;
}

function nonNegativeInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d{1,15}\s*$/.test(v)) return undefined;
  return Number(v);
}

/** Reads <history/> (a child of <x xmlns='http://jabber.org/protocol/muc'/>); unusable attributes are ignored. */
export function parseHistoryRequest(history: Element | undefined): HistoryRequest {
  if (!history) return {};
  const req: HistoryRequest = {};
  const maxchars = nonNegativeInt(history.attrs.maxchars);
  if (maxchars !== undefined) req.maxchars = maxchars;
  const maxstanzas = nonNegativeInt(history.attrs.maxstanzas);
  if (maxstanzas !== undefined) req.maxstanzas = maxstanzas;
  const seconds = nonNegativeInt(history.attrs.seconds);
  if (seconds !== undefined) req.seconds = seconds;
  if (history.attrs.since !== undefined) {
    const t = Date.parse(history.attrs.since);
    if (!Number.isNaN(t) && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(history.attrs.since.trim())) req.since = t;
  }
  return req;
}

/** The history message as sent to `to`: the stored message re-addressed, with its delay stamp. */
export function historyStanza(entry: HistoryEntry, to: string): Element {
  return new Element('message', { ...entry.message.attrs, to }, [...entry.message.children, entry.delay]);
}

/**
 * The history to send (oldest first): every limit applies at once, so the client gets the
 * least that satisfies all of them (§7.2.15). maxchars counts the characters of the complete
 * stanzas as sent.
 */
export function selectHistory(history: readonly HistoryEntry[], req: HistoryRequest, to: string, now = Date.now()): Element[] {
  let start = 0;
  // Only messages received within the last 'seconds' (seconds='0': none) and at or after 'since'.
  const after = req.seconds !== undefined ? now - req.seconds * 1000 : -Infinity;
  const since = req.since ?? -Infinity;
  while (start < history.length && !(history[start]!.at > after && history[start]!.at >= since)) start++;
  if (req.maxstanzas !== undefined) start = Math.max(start, history.length - req.maxstanzas);
  const out: Element[] = [];
  let chars = 0;
  for (let i = history.length - 1; i >= start; i--) {
    const stanza = historyStanza(history[i]!, to);
    if (req.maxchars !== undefined) {
      chars += stanza.toString().length;
      if (chars > req.maxchars) break;
    }
    out.push(stanza);
  }
  return out.reverse();
}
