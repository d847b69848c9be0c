/**
 * SASL for the server (RFC 4422, RFC 6120 §6): SCRAM-SHA-1/-256 with and without channel binding
 * (RFC 5802, RFC 7677, RFC 5929, RFC 9266) and PLAIN (RFC 4616).
 *
 * Inputs and outputs of `SaslMechanism.step` are raw bytes; the session does base64.
 */
import type { ScramHash } from './credentials';
import { plainAllowed, PlainServer } from './plain';
import { ScramServer } from './scram';
import { AnonymousServer } from './anonymous';
import type { SaslCondition, SaslContext, SaslMechanism } from './types';

export type { ScramHash, ScramCredentials } from './credentials';
export { deriveScramCredentials, verifyPassword, DEFAULT_SCRAM_ITERATIONS } from './credentials';
export { channelBindings } from './channel-binding';
export type { ChannelBindingType, SaslCondition, SaslStep, SaslContext, SaslMechanism } from './types';

const SCRAM: Record<string, { hash: ScramHash; plus: boolean }> = {
  'SCRAM-SHA-256-PLUS': { hash: 'sha256', plus: true },
  'SCRAM-SHA-1-PLUS': { hash: 'sha1', plus: true },
  'SCRAM-SHA-256': { hash: 'sha256', plus: false },
  'SCRAM-SHA-1': { hash: 'sha1', plus: false },
};

/**
 * Mechanism names to offer, strongest first: SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS (only when
 * channel bindings exist), SCRAM-SHA-256, SCRAM-SHA-1, PLAIN (only when secure or allowed).
 */
export function offeredMechanisms(ctx: SaslContext): string[] {
  if (ctx.anonymous) return ['ANONYMOUS'];
  const out: string[] = [];
  if (ctx.channelBindings.size > 0) out.push('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS');
  out.push('SCRAM-SHA-256', 'SCRAM-SHA-1');
  if (plainAllowed(ctx)) out.push('PLAIN');
  return out;
}

/** A server-side mechanism instance, or undefined when `name` is not offered on this connection. */
export function createMechanism(name: string, ctx: SaslContext): SaslMechanism | undefined {
  if (!offeredMechanisms(ctx).includes(name)) return undefined;
  if (name === 'PLAIN') return new PlainServer(ctx);
  if (name === 'ANONYMOUS') return new AnonymousServer();
  const scram = SCRAM[name];
  return scram === undefined ? undefined : new ScramServer(scram.hash, scram.plus, ctx);
}

/**
 * The failure condition to send when `createMechanism` returned undefined: 'encryption-required'
 * for PLAIN on an unencrypted connection, 'invalid-mechanism' otherwise.
 */
export function unavailableMechanismCondition(name: string, ctx: SaslContext): SaslCondition {
  return name === 'PLAIN' && !plainAllowed(ctx) ? 'encryption-required' : 'invalid-mechanism';
}
