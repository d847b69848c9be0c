/**
 * SCRAM key derivation (RFC 5802 §3, RFC 7677) and password checking against stored SCRAM keys
 * (used by PLAIN, RFC 4616). Passwords are prepared with PRECIS OpaqueString (RFC 8265 §4.2).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { preparePassword } from '../precis';

export type ScramHash = 'sha1' | 'sha256';

export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export const DEFAULT_SCRAM_ITERATIONS: Record<ScramHash, number> = { sha1: 4096, sha256: 4096 };
export const SCRAM_SALT_BYTES = 16;

/** Output length in bytes of the hash. */
export function hashLength(hash: ScramHash): number {
  return hash === 'sha1' ? 20 : 32;
}

export function H(hash: ScramHash, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

export function HMAC(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(hash, key).update(data).digest();
}

/** Hi() of RFC 5802 §2.2 is PBKDF2 with HMAC-hash and dkLen = hash length. */
export function Hi(hash: ScramHash, password: Buffer, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password, salt, iterations, hashLength(hash), hash);
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError('xor of buffers of different lengths');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time comparison (length mismatch returns false, without leaking content). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new RangeError(`invalid SCRAM iteration count ${iterations}`);
}

/** Keys from an already-prepared password. */
export function deriveFromPrepared(hash: ScramHash, prepared: string, iterations: number, salt: Buffer): ScramCredentials {
  checkIterations(iterations);
  const saltedPassword = Hi(hash, Buffer.from(prepared, 'utf8'), salt, iterations);
  const clientKey = HMAC(hash, saltedPassword, 'Client Key');
  return {
    salt: Buffer.from(salt),
    iterations,
    storedKey: H(hash, clientKey),
    serverKey: HMAC(hash, saltedPassword, 'Server Key'),
  };
}

/**
 * Derive stored keys from a (raw, unprepared) password; default iterations 4096 for sha1 and
 * sha256, random 16-byte salt. Throws when the password is not a valid OpaqueString.
 */
export function deriveScramCredentials(hash: ScramHash, password: string, iterations?: number, salt?: Buffer): ScramCredentials {
  const prepared = preparePassword(password);
  return deriveFromPrepared(hash, prepared, iterations ?? DEFAULT_SCRAM_ITERATIONS[hash], salt ?? randomBytes(SCRAM_SALT_BYTES));
}

/**
 * For PLAIN: check a password against stored SCRAM credentials (recompute StoredKey; constant-time
 * compare). A password that fails preparation never matches.
 */
export function verifyPassword(creds: ScramCredentials, hash: ScramHash, password: string): boolean {
  let prepared: string;
  try {
    prepared = preparePassword(password);
  } catch {
    prepared = '';
  }
  let derived: ScramCredentials;
  try {
    derived = deriveFromPrepared(hash, prepared, creds.iterations, creds.salt);
  } catch {
    return false;
  }
  // An unpreparable password is still run through the KDF (as '') so timing does not reveal it.
  const storedOk = safeEqual(derived.storedKey, creds.storedKey);
  return storedOk && prepared.length > 0;
}
