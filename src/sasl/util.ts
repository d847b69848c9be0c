/** Small helpers shared by the SASL mechanisms. */
import { Jid, prepareLocalpart } from '../jid';
import type { SaslCondition, SaslStep } from './types';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding: undefined for invalid byte sequences. */
export function decodeUtf8(buf: Buffer): string | undefined {
  try {
    return utf8.decode(buf);
  } catch {
    return undefined;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict (padded, canonical-alphabet) base64 decoding: undefined when not valid base64. */
export function decodeBase64(s: string): Buffer | undefined {
  return BASE64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

export function failure(condition: SaslCondition, text?: string, username?: string): Extract<SaslStep, { kind: 'failure' }> {
  const step: Extract<SaslStep, { kind: 'failure' }> = { kind: 'failure', condition };
  if (text !== undefined) step.text = text;
  if (username !== undefined) step.username = username;
  return step;
}

/** A failure after checking credentials that were wrong: the kind that is throttled. */
export function wrongCredentials(username: string): SaslStep {
  return { ...failure('not-authorized', undefined, username), guess: true };
}

/**
 * The localpart an identity string names: 'user' (the whole string) or the bare JID 'user@domain'
 * (its localpart; when `domain` is given the domain must equal it). Undefined when the string is
 * not a valid localpart / bare JID with localpart.
 */
export function identityToLocalpart(identity: string, domain?: string): string | undefined {
  try {
    if (identity.includes('@')) {
      const jid = Jid.parse(identity);
      if (jid.local === '' || jid.resource !== '') return undefined;
      if (domain !== undefined && jid.domain !== domain) return undefined;
      return jid.local;
    }
    return prepareLocalpart(identity);
  } catch {
    return undefined;
  }
}
