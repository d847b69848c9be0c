/** PLAIN server (RFC 4616), checked against the stored SCRAM credentials. */
import { DEFAULT_SCRAM_ITERATIONS, verifyPassword } from './credentials';
import { fakeCredentials } from './scram';
import type { SaslContext, SaslMechanism, SaslStep } from './types';
import { decodeUtf8, failure, identityToLocalpart, wrongCredentials } from './util';

/** PLAIN is only usable on encrypted connections unless explicitly allowed. */
export function plainAllowed(ctx: SaslContext): boolean {
  return ctx.secure || ctx.allowPlainWithoutTls === true;
}

export class PlainServer implements SaslMechanism {
  readonly name = 'PLAIN';
  private emptyChallengeSent = false;
  private done = false;

  constructor(private readonly ctx: SaslContext) {}

  async step(input: Buffer): Promise<SaslStep> {
    if (this.done) return failure('malformed-request', 'authentication exchange already finished');
    if (input.length === 0 && !this.emptyChallengeSent) {
      // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
      this.emptyChallengeSent = true;
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    this.done = true;
    return this.authenticate(input);
  }

  private async authenticate(input: Buffer): Promise<SaslStep> {
    if (!plainAllowed(this.ctx)) return failure('encryption-required');
    const msg = decodeUtf8(input);
    if (msg === undefined) return failure('malformed-request', 'PLAIN message is not UTF-8');
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd
    const parts = msg.split('\0');
    if (parts.length !== 3) return failure('malformed-request', 'PLAIN message must have three fields');
    const [authzid, authcid, password] = parts as [string, string, string];
    if (authcid === '') return failure('malformed-request', 'empty authcid');

    const username = identityToLocalpart(authcid, this.ctx.domain);
    if (username === undefined) return failure('not-authorized');
    if (password === '') return wrongCredentials(username);
    if (authzid !== '' && identityToLocalpart(authzid, this.ctx.domain) !== username) {
      return failure('invalid-authzid', undefined, username);
    }

    const sha256 = await this.ctx.lookup(username, 'sha256');
    const sha1 = sha256 === undefined ? await this.ctx.lookup(username, 'sha1') : undefined;
    if (sha256 !== undefined) {
      if (verifyPassword(sha256, 'sha256', password)) return { kind: 'success', username };
    } else if (sha1 !== undefined) {
      if (verifyPassword(sha1, 'sha1', password)) return { kind: 'success', username };
    } else {
      // No such account: spend the same effort so timing does not reveal it.
      verifyPassword(fakeCredentials('sha256', username, this.ctx.scramIterations ?? DEFAULT_SCRAM_ITERATIONS.sha256), 'sha256', password);
    }
    return wrongCredentials(username);
  }
}

export function createPlainServer(ctx: SaslContext): PlainServer {
  return new PlainServer(ctx);
}
