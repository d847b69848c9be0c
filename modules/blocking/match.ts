import type { Jid } from '../../src';

/**
 * XEP-0191 §6 JID matching (as in XEP-0016): an item user@domain/resource matches that full JID
 * only; user@domain matches it with any resource; domain/resource matches only that address;
 * a bare domain matches itself, every address at it, and every address at its subdomains.
 */
export function itemMatches(item: Jid, other: Jid): boolean {
  if (item.local !== '') {
    if (other.local !== item.local || other.domain !== item.domain) return false;
    return item.resource === '' || other.resource === item.resource;
  }
  if (item.resource !== '') return other.local === '' && other.domain === item.domain && other.resource === item.resource;
  if (other.domain === item.domain) return true;
  return !isIpLiteral(other.domain) && other.domain.endsWith('.' + item.domain);
}

/** The same rule as set lookups, for the hot path: at most a handful of probes per stanza. */
export function isBlockedBy(blocked: ReadonlySet<string>, other: Jid): boolean {
  if (blocked.size === 0) return false;
  if (other.local !== '') {
    const bare = other.bareString;
    if (blocked.has(bare)) return true;
    if (other.resource !== '' && blocked.has(bare + '/' + other.resource)) return true;
  } else if (other.resource !== '' && blocked.has(other.domain + '/' + other.resource)) {
    return true;
  }
  let domain = other.domain;
  if (isIpLiteral(domain)) return blocked.has(domain); // no parent domains
  for (;;) {
    if (blocked.has(domain)) return true;
    const dot = domain.indexOf('.');
    if (dot === -1) return false;
    domain = domain.slice(dot + 1);
  }
}

function isIpLiteral(domain: string): boolean {
  return domain.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(domain);
}
