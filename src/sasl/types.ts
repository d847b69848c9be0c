/** Shared SASL types (RFC 4422, RFC 6120 §6). Kept separate so mechanisms can import them without cycles. */
import type { ScramCredentials, ScramHash } from './credentials';

export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';

/** RFC 6120 §6.5 SASL failure conditions. */
export type SaslCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  /** username = normalised localpart; data = additional data with success (SCRAM server-final). */
  | { kind: 'success'; username: string; data?: Buffer }
  /** username when known, for throttling/logging. */
  /**
   * `guess`: credentials were checked and were wrong (a password guess). Only these are
   * throttled; negotiation failures (an unsupported channel binding type, a malformed
   * message) are not, so a client falling back from one mechanism to the next is not slowed.
   */
  | { kind: 'failure'; condition: SaslCondition; text?: string; username?: string; guess?: boolean };

export interface SaslContext {
  /**
   * Stored SCRAM credentials for a normalised localpart, or undefined if no such account. May be
   * asynchronous (e.g. a network database backs the account store).
   */
  lookup(username: string, hash: ScramHash): ScramCredentials | undefined | Promise<ScramCredentials | undefined>;
  /** Channel bindings of this connection (empty when not TLS). */
  channelBindings: Map<ChannelBindingType, Buffer>;
  /** Whether the connection is encrypted (PLAIN is only offered then, unless allowPlainWithoutTls). */
  secure: boolean;
  allowPlainWithoutTls?: boolean;
  /**
   * Optional: the (normalised) domain of this virtual host. When set, an authzid or PLAIN authcid of
   * the form 'user@domain' must name this domain; when unset, the domain of such forms is not checked.
   */
  domain?: string;
  /** The virtual host is anonymous (RFC 4505): ANONYMOUS is the only mechanism, and nothing else is offered. */
  anonymous?: boolean;
  /**
   * Optional: the iteration count the server uses for new accounts. Nonexistent users are answered
   * with fake credentials using this count so they look like real ones (default 4096).
   */
  scramIterations?: number;
}

export interface SaslMechanism {
  readonly name: string;
  /**
   * Feed one client message (raw bytes; the session does base64). Resolves to the next step. Await
   * each step before feeding the next message.
   */
  step(input: Buffer): Promise<SaslStep>;
}
