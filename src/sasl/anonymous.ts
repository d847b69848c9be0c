/** ANONYMOUS (RFC 4505): a guest login on a virtual host that has no accounts. */
import { randomBytes } from 'node:crypto';
import type { SaslMechanism, SaslStep } from './types';
import { decodeUtf8, failure } from './util';

/** RFC 4505 §2: the optional trace information is at most 255 characters. */
const MAX_TRACE_CHARS = 255;

export class AnonymousServer implements SaslMechanism {
  readonly name = 'ANONYMOUS';
  private done = false;

  async step(input: Buffer): Promise<SaslStep> {
    if (this.done) return failure('malformed-request', 'authentication exchange already finished');
    this.done = true;
    const trace = decodeUtf8(input);
    if (trace === undefined || [...trace].length > MAX_TRACE_CHARS) return failure('malformed-request', 'invalid trace information');
    // A fresh, unguessable localpart per login: guests never share an address.
    return { kind: 'success', username: randomBytes(9).toString('hex') };
  }
}
