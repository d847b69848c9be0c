import type { Element } from './xml/element';
import type { Jid } from './jid';
import type { StreamError } from './errors';

/**
 * What modules see of a bound client session, whatever its transport. A cluster node would
 * offer the same shape for sessions on other nodes, with `send` crossing the bus.
 */
export interface Session {
  readonly id: string;
  /** Full JID once bound. */
  readonly jid: Jid;
  readonly remoteAddress: string;
  /** Last available presence the client broadcast; undefined before initial presence or after unavailable. */
  presence: Element | undefined;
  /** Priority from that presence (RFC 6121 §4.7.2.3); 0 when absent. */
  priority: number;
  /** RFC 6121 §2.1.6: the client asked for the roster, so it gets roster pushes. */
  rosterRequested: boolean;
  /** Per-session state owned by modules, keyed by module name. */
  readonly data: Map<string, unknown>;
  /** Queue a stanza for the client. Never throws; a closed session drops it. */
  send(stanza: Element): void;
  /** End the stream, with a stream error when given. */
  close(error?: StreamError): void;
  readonly closed: boolean;
}

/** True when the session has sent available presence and may receive bare-JID messages. */
export function isAvailable(s: Session): boolean {
  return s.presence !== undefined;
}
