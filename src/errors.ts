import { Element, x } from './xml/element';

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

/** RFC 6120 §8.3.3 defined conditions, each with the error type the RFC pairs it with. */
const STANZA_CONDITIONS = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
} as const;

export type StanzaErrorCondition = keyof typeof STANZA_CONDITIONS;
export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** Thrown by handlers; the router turns it into an error reply to the sender. */
export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    type?: StanzaErrorType,
    /** An application-specific condition element, e.g. XEP-0191's <blocked/>. */
    readonly appCondition?: Element,
  ) {
    super(text ?? condition);
    this.name = 'StanzaError';
    this.type = type ?? STANZA_CONDITIONS[condition];
  }

  toElement(by?: string): Element {
    return x(
      'error',
      { type: this.type, by },
      x(this.condition, { xmlns: NS_STANZAS }),
      this.text !== undefined ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, this.text) : undefined,
      this.appCondition,
    );
  }
}

/**
 * Builds the error reply to `stanza` (RFC 6120 §8.3.1): addresses swapped, original
 * payload dropped except for messages, where keeping it helps the sender.
 */
export function errorReply(stanza: Element, error: StanzaError, from?: string): Element {
  const reply = x(stanza.name, {
    type: 'error',
    id: stanza.attrs.id,
    from: from ?? stanza.attrs.to,
    to: stanza.attrs.from,
  });
  if (stanza.name === 'message') {
    const body = stanza.getChild('body');
    if (body) reply.append(body);
  }
  reply.append(error.toElement());
  return reply;
}

export function isStanzaErrorCondition(s: string): s is StanzaErrorCondition {
  return Object.prototype.hasOwnProperty.call(STANZA_CONDITIONS, s);
}

/** RFC 6120 §4.9.3 stream error conditions. */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone'
  | 'host-unknown' | 'improper-addressing' | 'internal-server-error' | 'invalid-from'
  | 'invalid-namespace' | 'invalid-xml' | 'not-authorized' | 'not-well-formed' | 'policy-violation'
  | 'remote-connection-failed' | 'reset' | 'resource-constraint' | 'restricted-xml' | 'see-other-host'
  | 'system-shutdown' | 'undefined-condition' | 'unsupported-encoding' | 'unsupported-feature'
  | 'unsupported-stanza-type' | 'unsupported-version';

/** Closes one stream: the session sends <stream:error/> and </stream:stream>. */
export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
    /** An application-specific condition, e.g. XEP-0198's <handled-count-too-high/>. */
    readonly appCondition?: Element,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
  }

  toElement(): Element {
    return x(
      'stream:error',
      null,
      x(this.condition, { xmlns: NS_STREAMS }),
      this.text !== undefined ? x('text', { xmlns: NS_STREAMS, 'xml:lang': 'en' }, this.text) : undefined,
      this.appCondition,
    );
  }
}
