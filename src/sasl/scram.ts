/**
 * SCRAM server (RFC 5802, RFC 7677) with channel binding (RFC 5929 tls-server-end-point,
 * RFC 9266 tls-exporter) for the -PLUS variants.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { JidError, prepareLocalpart } from '../jid';
import { DEFAULT_SCRAM_ITERATIONS, H, HMAC, hashLength, safeEqual, xor, type ScramCredentials, type ScramHash } from './credentials';
import type { ChannelBindingType, SaslContext, SaslMechanism, SaslStep } from './types';
import { decodeBase64, decodeUtf8, failure, identityToLocalpart, wrongCredentials } from './util';

export interface ScramServerOptions {
  /** Test hook: produces the server's part of the nonce (default: 24 random bytes, base64). */
  randomNonce?: () => string;
}

export const SERVER_NONCE_BYTES = 24;

/** Per-process secret from which fake credentials for nonexistent users are derived. */
const FAKE_SECRET = randomBytes(32);

/**
 * Deterministic fake credentials for a nonexistent user, so that the server-first-message looks
 * like one for a real account (same salt and iteration count on every attempt).
 */
export function fakeCredentials(hash: ScramHash, username: string, iterations: number): ScramCredentials {
  const derive = (what: string, len: number): Buffer =>
    createHmac('sha256', FAKE_SECRET).update(`${what}\0${hash}\0${username}`).digest().subarray(0, len);
  return {
    salt: derive('salt', 16),
    iterations,
    storedKey: derive('stored-key', hashLength(hash)),
    serverKey: derive('server-key', hashLength(hash)),
  };
}

/** RFC 5802 §7: printable = %x21-2B / %x2D-7E (no comma). */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
/** RFC 5802 §7: attr-val = ALPHA "=" value; value = 1*value-char. */
const ATTR_VAL = /^[A-Za-z]=[^,]+$/;
/** RFC 5802 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-"). */
const CB_NAME = /^[A-Za-z0-9.-]+$/;

/** RFC 5802 §5.1 saslname: '=2C' → ',', '=3D' → '='; any other '=' (or ',') is invalid. */
export function decodeSaslname(s: string): string | undefined {
  if (s.length === 0 || s.includes(',')) return undefined;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '=') {
      out += c;
      continue;
    }
    const esc = s.slice(i + 1, i + 3);
    if (esc === '2C') out += ',';
    else if (esc === '3D') out += '=';
    else return undefined;
    i += 2;
  }
  return out;
}

export function scramMechanismName(hash: ScramHash, plus: boolean): string {
  return (hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256') + (plus ? '-PLUS' : '');
}

type State =
  | { phase: 'start'; emptyChallengeSent: boolean }
  | {
      phase: 'first-sent';
      username: string;
      exists: boolean;
      creds: ScramCredentials;
      nonce: string;
      /** base64 of cbind-input expected in c= */
      cbindInput: Buffer;
      clientFirstBare: string;
      serverFirst: string;
    }
  | { phase: 'done' };

export class ScramServer implements SaslMechanism {
  readonly name: string;
  private state: State = { phase: 'start', emptyChallengeSent: false };

  constructor(
    readonly hash: ScramHash,
    readonly plus: boolean,
    private readonly ctx: SaslContext,
    private readonly options: ScramServerOptions = {},
  ) {
    this.name = scramMechanismName(hash, plus);
  }

  async step(input: Buffer): Promise<SaslStep> {
    const state = this.state;
    let result: SaslStep;
    switch (state.phase) {
      case 'start':
        if (input.length === 0) {
          // No initial response: send an empty challenge (RFC 6120 §6.4.2), once.
          if (state.emptyChallengeSent) {
            result = failure('malformed-request', 'empty client-first-message');
            break;
          }
          state.emptyChallengeSent = true;
          return { kind: 'challenge', data: Buffer.alloc(0) };
        }
        result = await this.clientFirst(input);
        break;
      case 'first-sent':
        result = this.clientFinal(input, state);
        break;
      case 'done':
        return failure('malformed-request', 'authentication exchange already finished');
    }
    if (result.kind !== 'challenge') this.state = { phase: 'done' };
    return result;
  }

  private async clientFirst(input: Buffer): Promise<SaslStep> {
    const msg = decodeUtf8(input);
    if (msg === undefined) return failure('malformed-request', 'client-first-message is not UTF-8');
    if (msg.includes('\0')) return failure('malformed-request', 'NUL in client-first-message');

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const c1 = msg.indexOf(',');
    const c2 = c1 === -1 ? -1 : msg.indexOf(',', c1 + 1);
    if (c2 === -1) return failure('malformed-request', 'missing GS2 header');
    const flag = msg.slice(0, c1);
    const authzField = msg.slice(c1 + 1, c2);
    const gs2Header = msg.slice(0, c2 + 1);
    const clientFirstBare = msg.slice(c2 + 1);

    let cbName: string | undefined;
    if (flag.startsWith('p=')) {
      cbName = flag.slice(2);
      if (!CB_NAME.test(cbName)) return failure('malformed-request', 'invalid channel binding name');
    } else if (flag !== 'n' && flag !== 'y') {
      return failure('malformed-request', 'invalid GS2 channel binding flag');
    }

    let authzid: string | undefined;
    if (authzField !== '') {
      if (!authzField.startsWith('a=')) return failure('malformed-request', 'invalid authzid field');
      authzid = decodeSaslname(authzField.slice(2));
      if (authzid === undefined) return failure('malformed-request', 'invalid authzid encoding');
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = clientFirstBare.split(',');
    if (attrs.some((a) => a.startsWith('m='))) return failure('malformed-request', 'extensions-not-supported');
    const [userAttr, nonceAttr, ...extensions] = attrs;
    if (userAttr === undefined || !userAttr.startsWith('n=')) return failure('malformed-request', 'missing username');
    if (nonceAttr === undefined || !nonceAttr.startsWith('r=')) return failure('malformed-request', 'missing nonce');
    if (!extensions.every((e) => ATTR_VAL.test(e))) return failure('malformed-request', 'invalid attribute');
    const clientNonce = nonceAttr.slice(2);
    if (!NONCE.test(clientNonce)) return failure('malformed-request', 'invalid nonce');
    const rawUser = decodeSaslname(userAttr.slice(2));
    if (rawUser === undefined) return failure('malformed-request', 'invalid username encoding');

    // Channel binding policy (RFC 5802 §6).
    let cbData: Buffer | undefined;
    if (this.plus) {
      if (cbName === undefined) return failure('malformed-request', `${this.name} requires channel binding`);
      cbData = this.ctx.channelBindings.get(cbName as ChannelBindingType);
      if (cbData === undefined) return failure('not-authorized', 'unsupported-channel-binding-type');
    } else if (cbName !== undefined) {
      return failure('malformed-request', `channel binding requested with ${this.name}`);
    } else if (flag === 'y' && this.ctx.channelBindings.size > 0) {
      return failure('not-authorized', 'server-does-support-channel-binding');
    }

    let username: string;
    try {
      username = prepareLocalpart(rawUser);
    } catch (e) {
      if (e instanceof JidError) return failure('not-authorized', 'invalid username');
      throw e;
    }

    if (authzid !== undefined && identityToLocalpart(authzid, this.ctx.domain) !== username) {
      return failure('invalid-authzid', undefined, username);
    }

    const stored = await this.ctx.lookup(username, this.hash);
    const creds = stored ?? fakeCredentials(this.hash, username, this.ctx.scramIterations ?? DEFAULT_SCRAM_ITERATIONS[this.hash]);
    const serverNonce = this.options.randomNonce?.() ?? randomBytes(SERVER_NONCE_BYTES).toString('base64');
    const nonce = clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${creds.salt.toString('base64')},i=${creds.iterations}`;
    this.state = {
      phase: 'first-sent',
      username,
      exists: stored !== undefined,
      creds,
      nonce,
      cbindInput: cbData === undefined ? Buffer.from(gs2Header, 'utf8') : Buffer.concat([Buffer.from(gs2Header, 'utf8'), cbData]),
      clientFirstBare,
      serverFirst,
    };
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  private clientFinal(input: Buffer, st: Extract<State, { phase: 'first-sent' }>): SaslStep {
    const { username } = st;
    const msg = decodeUtf8(input);
    if (msg === undefined) return failure('malformed-request', 'client-final-message is not UTF-8', username);
    if (msg.includes('\0')) return failure('malformed-request', 'NUL in client-final-message', username);

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const p = msg.lastIndexOf(',p=');
    if (p === -1) return failure('malformed-request', 'missing proof', username);
    const withoutProof = msg.slice(0, p);
    const proof = decodeBase64(msg.slice(p + 3));
    if (proof === undefined || proof.length !== hashLength(this.hash)) return failure('malformed-request', 'invalid proof', username);
    const attrs = withoutProof.split(',');
    if (attrs.some((a) => a.startsWith('m='))) return failure('malformed-request', 'extensions-not-supported', username);
    const [cbAttr, nonceAttr, ...extensions] = attrs;
    if (cbAttr === undefined || !cbAttr.startsWith('c=')) return failure('malformed-request', 'missing channel binding', username);
    if (nonceAttr === undefined || !nonceAttr.startsWith('r=')) return failure('malformed-request', 'missing nonce', username);
    if (!extensions.every((e) => ATTR_VAL.test(e))) return failure('malformed-request', 'invalid attribute', username);
    const cbind = decodeBase64(cbAttr.slice(2));
    if (cbind === undefined) return failure('malformed-request', 'invalid channel binding encoding', username);

    if (nonceAttr.slice(2) !== st.nonce) return failure('not-authorized', 'nonce mismatch', username);
    if (!safeEqual(cbind, st.cbindInput)) return failure('not-authorized', 'channel-bindings-dont-match', username);

    const authMessage = Buffer.from(`${st.clientFirstBare},${st.serverFirst},${withoutProof}`, 'utf8');
    const clientSignature = HMAC(this.hash, st.creds.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const proofOk = safeEqual(H(this.hash, clientKey), st.creds.storedKey);
    if (!proofOk || !st.exists) return wrongCredentials(username);

    const serverSignature = HMAC(this.hash, st.creds.serverKey, authMessage);
    return { kind: 'success', username, data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }
}

export function createScramServer(hash: ScramHash, plus: boolean, ctx: SaslContext, options?: ScramServerOptions): ScramServer {
  return new ScramServer(hash, plus, ctx, options);
}
