import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  channelBindings,
  createMechanism,
  deriveScramCredentials,
  offeredMechanisms,
  unavailableMechanismCondition,
  verifyPassword,
  type ChannelBindingType,
  type SaslContext,
  type SaslMechanism,
  type SaslStep,
  type ScramCredentials,
  type ScramHash,
} from '../../src/sasl';
import { createScramServer, decodeSaslname } from '../../src/sasl/scram';
import { endPointHash, tlsServerEndPoint } from '../../src/sasl/channel-binding';
import { PlainServer } from '../../src/sasl/plain';

// ---------------------------------------------------------------------------------------------
// helpers

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function ctxWith(
  users: Record<string, string>,
  opts: Partial<Omit<SaslContext, 'lookup'>> = {},
): SaslContext & { lookups: string[] } {
  const store = new Map<string, ScramCredentials>();
  for (const [user, password] of Object.entries(users)) {
    for (const hash of ['sha1', 'sha256'] as const) store.set(`${hash}:${user}`, deriveScramCredentials(hash, password));
  }
  const lookups: string[] = [];
  return {
    lookups,
    lookup(username, hash) {
      lookups.push(`${hash}:${username}`);
      return store.get(`${hash}:${username}`);
    },
    channelBindings: new Map(),
    secure: true,
    ...opts,
  };
}

function expectChallenge(step: SaslStep): Buffer {
  if (step.kind !== 'challenge') throw new Error(`expected challenge, got ${JSON.stringify(step)}`);
  return step.data;
}

function expectFailure(step: SaslStep, condition: string): Extract<SaslStep, { kind: 'failure' }> {
  if (step.kind !== 'failure') throw new Error(`expected failure ${condition}, got ${JSON.stringify(step)}`);
  expect(step.condition).toBe(condition);
  return step;
}

function parseAttrs(msg: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of msg.split(',')) out[part.slice(0, 1)] = part.slice(2);
  return out;
}

const escapeSaslname = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

interface ClientOpts {
  authzid?: string;
  /** gs2 cbind flag: 'n', 'y' or 'p=<name>' */
  flag?: string;
  cbData?: Buffer;
  nonce?: string;
  /** overrides the c= value */
  cbOverride?: string;
  /** tamper with the final nonce */
  finalNonce?: (n: string) => string;
}

/** A hand-written SCRAM client (RFC 5802 §3). */
class ScramClient {
  readonly gs2Header: string;
  readonly clientFirstBare: string;
  readonly clientNonce: string;
  private serverSignature: Buffer | undefined;
  serverFirstAttrs: Record<string, string> = {};

  constructor(
    readonly hash: ScramHash,
    readonly username: string,
    readonly password: string,
    readonly opts: ClientOpts = {},
  ) {
    this.clientNonce = opts.nonce ?? 'cl1ent-n0nce+' + Math.random().toString(36).slice(2);
    const authz = opts.authzid !== undefined ? 'a=' + escapeSaslname(opts.authzid) : '';
    this.gs2Header = `${opts.flag ?? 'n'},${authz},`;
    this.clientFirstBare = `n=${escapeSaslname(username)},r=${this.clientNonce}`;
  }

  first(): Buffer {
    return b(this.gs2Header + this.clientFirstBare);
  }

  final(serverFirst: Buffer): Buffer {
    const sf = serverFirst.toString('utf8');
    const attrs = parseAttrs(sf);
    this.serverFirstAttrs = attrs;
    const salt = Buffer.from(attrs.s!, 'base64');
    const iterations = Number(attrs.i);
    const len = this.hash === 'sha1' ? 20 : 32;
    const saltedPassword = pbkdf2Sync(this.password, salt, iterations, len, this.hash);
    const clientKey = createHmac(this.hash, saltedPassword).update('Client Key').digest();
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const serverKey = createHmac(this.hash, saltedPassword).update('Server Key').digest();
    const cbind = this.opts.cbData ? Buffer.concat([b(this.gs2Header), this.opts.cbData]) : b(this.gs2Header);
    const c = this.opts.cbOverride ?? cbind.toString('base64');
    const nonce = this.opts.finalNonce ? this.opts.finalNonce(attrs.r!) : attrs.r!;
    const withoutProof = `c=${c},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${sf},${withoutProof}`;
    const clientSignature = createHmac(this.hash, storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(len);
    for (let i = 0; i < len; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.serverSignature = createHmac(this.hash, serverKey).update(authMessage).digest();
    return b(`${withoutProof},p=${proof.toString('base64')}`);
  }

  verifyServerFinal(data: Buffer | undefined): boolean {
    return data !== undefined && this.serverSignature !== undefined && data.toString('utf8') === 'v=' + this.serverSignature.toString('base64');
  }
}

async function runScram(mech: SaslMechanism, client: ScramClient): Promise<{ first: SaslStep; final?: SaslStep }> {
  const first = await mech.step(client.first());
  if (first.kind !== 'challenge') return { first };
  return { first, final: await mech.step(client.final(first.data)) };
}

const HASH_OF: Record<string, ScramHash> = {
  'SCRAM-SHA-1': 'sha1',
  'SCRAM-SHA-256': 'sha256',
  'SCRAM-SHA-1-PLUS': 'sha1',
  'SCRAM-SHA-256-PLUS': 'sha256',
};

// ---------------------------------------------------------------------------------------------

describe('RFC test vectors', () => {
  it('RFC 5802 §5 SCRAM-SHA-1', async () => {
    const creds = deriveScramCredentials('sha1', 'pencil', 4096, Buffer.from('QSXCR+Q6sek8bf92', 'base64'));
    const ctx: SaslContext = {
      lookup: (u, h) => (u === 'user' && h === 'sha1' ? creds : undefined),
      channelBindings: new Map(),
      secure: true,
    };
    const mech = createScramServer('sha1', false, ctx, { randomNonce: () => '3rfcNHYJY1ZVvWVs7j' });
    expect(mech.name).toBe('SCRAM-SHA-1');
    const s1 = expectChallenge(await mech.step(b('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')));
    expect(s1.toString()).toBe('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    const s2 = await mech.step(b('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
    expect(s2).toEqual({ kind: 'success', username: 'user', data: b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=') });
  });

  it('RFC 7677 §3 SCRAM-SHA-256', async () => {
    const creds = deriveScramCredentials('sha256', 'pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    const ctx: SaslContext = {
      lookup: (u, h) => (u === 'user' && h === 'sha256' ? creds : undefined),
      channelBindings: new Map(),
      secure: true,
    };
    const mech = createScramServer('sha256', false, ctx, { randomNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
    expect(mech.name).toBe('SCRAM-SHA-256');
    const s1 = expectChallenge(await mech.step(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')));
    expect(s1.toString()).toBe('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const s2 = await mech.step(
      b('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='),
    );
    expect(s2).toEqual({ kind: 'success', username: 'user', data: b('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=') });
  });
});

describe('credentials', () => {
  it('derives keys as RFC 5802 describes, with defaults', () => {
    for (const hash of ['sha1', 'sha256'] as const) {
      const c = deriveScramCredentials(hash, 'pencil');
      expect(c.iterations).toBe(4096);
      expect(c.salt.length).toBe(16);
      const len = hash === 'sha1' ? 20 : 32;
      expect(c.storedKey.length).toBe(len);
      expect(c.serverKey.length).toBe(len);
      const sp = pbkdf2Sync('pencil', c.salt, 4096, len, hash);
      expect(c.storedKey).toEqual(createHash(hash).update(createHmac(hash, sp).update('Client Key').digest()).digest());
      expect(c.serverKey).toEqual(createHmac(hash, sp).update('Server Key').digest());
      // random salt each time
      expect(deriveScramCredentials(hash, 'pencil').salt.equals(c.salt)).toBe(false);
    }
  });

  it('honours explicit iterations and salt', () => {
    const salt = Buffer.from('0123456789abcdef');
    const c = deriveScramCredentials('sha256', 'pw', 10, salt);
    expect(c.iterations).toBe(10);
    expect(c.salt).toEqual(salt);
    expect(deriveScramCredentials('sha256', 'pw', 10, salt)).toEqual(c);
  });

  it('verifyPassword', () => {
    for (const hash of ['sha1', 'sha256'] as const) {
      const c = deriveScramCredentials(hash, 'correct horse', 100);
      expect(verifyPassword(c, hash, 'correct horse')).toBe(true);
      expect(verifyPassword(c, hash, 'correct horsf')).toBe(false);
      expect(verifyPassword(c, hash, '')).toBe(false);
      expect(verifyPassword(c, hash === 'sha1' ? 'sha256' : 'sha1', 'correct horse')).toBe(false);
    }
  });

  it('decodeSaslname', () => {
    expect(decodeSaslname('a=2Cb=3Dc')).toBe('a,b=c');
    expect(decodeSaslname('plain')).toBe('plain');
    expect(decodeSaslname('bad=2')).toBeUndefined();
    expect(decodeSaslname('bad=41')).toBeUndefined();
    expect(decodeSaslname('')).toBeUndefined();
  });
});

describe('mechanism selection', () => {
  const cb = new Map<ChannelBindingType, Buffer>([['tls-exporter', Buffer.alloc(32, 1)]]);

  it('offers strongest first, -PLUS only with channel bindings, PLAIN only when secure', () => {
    expect(offeredMechanisms(ctxWith({}, { channelBindings: cb }))).toEqual([
      'SCRAM-SHA-256-PLUS',
      'SCRAM-SHA-1-PLUS',
      'SCRAM-SHA-256',
      'SCRAM-SHA-1',
      'PLAIN',
    ]);
    expect(offeredMechanisms(ctxWith({}))).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    expect(offeredMechanisms(ctxWith({}, { secure: false }))).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-1']);
    expect(offeredMechanisms(ctxWith({}, { secure: false, allowPlainWithoutTls: true }))).toEqual([
      'SCRAM-SHA-256',
      'SCRAM-SHA-1',
      'PLAIN',
    ]);
  });

  it('createMechanism only for offered names', () => {
    expect(createMechanism('SCRAM-SHA-256', ctxWith({}))?.name).toBe('SCRAM-SHA-256');
    expect(createMechanism('SCRAM-SHA-256-PLUS', ctxWith({}))).toBeUndefined();
    expect(createMechanism('SCRAM-SHA-1-PLUS', ctxWith({}, { channelBindings: cb }))?.name).toBe('SCRAM-SHA-1-PLUS');
    expect(createMechanism('PLAIN', ctxWith({}, { secure: false }))).toBeUndefined();
    expect(createMechanism('PLAIN', ctxWith({}))?.name).toBe('PLAIN');
    expect(createMechanism('DIGEST-MD5', ctxWith({}))).toBeUndefined();
    expect(createMechanism('scram-sha-1', ctxWith({}))).toBeUndefined();
    expect(unavailableMechanismCondition('PLAIN', ctxWith({}, { secure: false }))).toBe('encryption-required');
    expect(unavailableMechanismCondition('SCRAM-SHA-1-PLUS', ctxWith({}))).toBe('invalid-mechanism');
  });
});

describe('SCRAM round trips', () => {
  const cbData = new Map<ChannelBindingType, Buffer>([
    ['tls-exporter', Buffer.alloc(32, 7)],
    ['tls-server-end-point', Buffer.alloc(32, 9)],
  ]);

  for (const name of ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS']) {
    const hash = HASH_OF[name]!;
    const plus = name.endsWith('-PLUS');
    const cbTypes: ChannelBindingType[] = plus ? ['tls-exporter', 'tls-server-end-point'] : [];
    for (const cbType of plus ? cbTypes : [undefined]) {
      it(`${name}${cbType ? ` with ${cbType}` : ''} succeeds with the right password`, async () => {
        const ctx = ctxWith({ juliet: 'r0m3o!' }, { channelBindings: plus ? cbData : new Map() });
        const mech = createMechanism(name, ctx)!;
        const client = new ScramClient(hash, 'juliet', 'r0m3o!', cbType ? { flag: `p=${cbType}`, cbData: cbData.get(cbType) } : {});
        const { first, final } = await runScram(mech, client);
        const sf = expectChallenge(first).toString();
        expect(sf).toMatch(new RegExp(`^r=${client.clientNonce.replace(/[+.]/g, '\\$&')}[A-Za-z0-9+/]{32},s=[A-Za-z0-9+/]{22}==,i=4096$`));
        expect(final?.kind).toBe('success');
        if (final?.kind !== 'success') return;
        expect(final.username).toBe('juliet');
        expect(client.verifyServerFinal(final.data)).toBe(true);
        expect(ctx.lookups).toEqual([`${hash}:juliet`]);
        // further steps after completion fail
        expectFailure(await mech.step(b('x')), 'malformed-request');
      });
    }

    it(`${name} fails with a wrong password`, async () => {
      const ctx = ctxWith({ juliet: 'r0m3o!' }, { channelBindings: plus ? cbData : new Map() });
      const opts: ClientOpts = plus ? { flag: 'p=tls-exporter', cbData: cbData.get('tls-exporter') } : {};
      const { final } = await runScram(createMechanism(name, ctx)!, new ScramClient(hash, 'juliet', 'wrong', opts));
      expect(final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
    });
  }

  it('normalises the username (case, =2C/=3D decoding) and accepts empty initial response', async () => {
    const ctx = ctxWith({ juliet: 'pw' });
    const mech = createMechanism('SCRAM-SHA-256', ctx)!;
    expect(expectChallenge(await mech.step(Buffer.alloc(0))).length).toBe(0);
    const client = new ScramClient('sha256', 'Juliet', 'pw');
    const first = expectChallenge(await mech.step(client.first()));
    const final = await mech.step(client.final(first));
    expect(final.kind).toBe('success');
    expect(final.kind === 'success' && final.username).toBe('juliet');
  });

  it('a second empty response is malformed', async () => {
    const mech = createMechanism('SCRAM-SHA-1', ctxWith({}))!;
    expectChallenge(await mech.step(Buffer.alloc(0)));
    expectFailure(await mech.step(Buffer.alloc(0)), 'malformed-request');
  });

  it('decodes =2C and =3D in the username before preparing it', async () => {
    const lookups: string[] = [];
    const ctx: SaslContext = {
      lookup: (u) => (lookups.push(u), undefined),
      channelBindings: new Map(),
      secure: true,
    };
    const mech = createMechanism('SCRAM-SHA-1', ctx)!;
    expectChallenge(await mech.step(b('n,,n=a=2Cb=3Dc,r=abc')));
    expect(lookups).toEqual(['a,b=c']);
  });

  it('unknown user: same failure, same shape of first challenge, deterministic salt', async () => {
    const ctx = ctxWith({ juliet: 'pw' });
    const real = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, new ScramClient('sha256', 'juliet', 'bad'));
    const fake1 = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, new ScramClient('sha256', 'nobody', 'bad'));
    const fake2 = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, new ScramClient('sha256', 'nobody', 'other'));
    const shape = /^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/;
    const realFirst = expectChallenge(real.first).toString();
    const fakeFirst1 = expectChallenge(fake1.first).toString();
    const fakeFirst2 = expectChallenge(fake2.first).toString();
    expect(realFirst).toMatch(shape);
    expect(fakeFirst1).toMatch(shape);
    expect(parseAttrs(fakeFirst1).s).toBe(parseAttrs(fakeFirst2).s);
    expect(parseAttrs(fakeFirst1).r).not.toBe(parseAttrs(fakeFirst2).r);
    expect(real.final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
    expect(fake1.final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody', guess: true });
    expect(fake2.final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody', guess: true });
    // a different fake user gets a different salt
    const fake3 = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, new ScramClient('sha256', 'someone', 'bad'));
    expect(parseAttrs(expectChallenge(fake3.first).toString()).s).not.toBe(parseAttrs(fakeFirst1).s);
  });

  it('fake iterations follow ctx.scramIterations', async () => {
    const ctx = ctxWith({}, { scramIterations: 10000 });
    const first = expectChallenge(await createMechanism('SCRAM-SHA-1', ctx)!.step(b('n,,n=ghost,r=abc'))).toString();
    expect(parseAttrs(first).i).toBe('10000');
  });

  it('sends the stored iteration count', async () => {
    const creds = deriveScramCredentials('sha256', 'pw', 12345);
    const ctx: SaslContext = { lookup: () => creds, channelBindings: new Map(), secure: true };
    const client = new ScramClient('sha256', 'u', 'pw');
    const { first, final } = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, client);
    expect(parseAttrs(expectChallenge(first).toString()).i).toBe('12345');
    expect(final?.kind).toBe('success');
  });

  describe('authzid', () => {
    it('authzid equal to self succeeds (localpart or bare JID form)', async () => {
      for (const authzid of ['juliet', 'Juliet', 'juliet@capulet.lit']) {
        const ctx = ctxWith({ juliet: 'pw' }, { domain: 'capulet.lit' });
        const { final } = await runScram(createMechanism('SCRAM-SHA-1', ctx)!, new ScramClient('sha1', 'juliet', 'pw', { authzid }));
        expect(final?.kind).toBe('success');
      }
    });

    it('authzid of another user → invalid-authzid', async () => {
      for (const authzid of ['romeo', 'romeo@capulet.lit', 'juliet@montague.lit', 'juliet@capulet.lit/balcony', 'capulet.lit']) {
        const ctx = ctxWith({ juliet: 'pw', romeo: 'pw' }, { domain: 'capulet.lit' });
        const { first } = await runScram(createMechanism('SCRAM-SHA-1', ctx)!, new ScramClient('sha1', 'juliet', 'pw', { authzid }));
        expect(first).toEqual({ kind: 'failure', condition: 'invalid-authzid', username: 'juliet' });
      }
    });

    it('authzid with escaped characters is decoded', async () => {
      const ctx = ctxWith({ 'a,b': 'pw' });
      const { final } = await runScram(createMechanism('SCRAM-SHA-256', ctx)!, new ScramClient('sha256', 'a,b', 'pw', { authzid: 'a,b' }));
      expect(final?.kind).toBe('success');
    });
  });

  describe('channel binding', () => {
    it('-PLUS with mismatching cb data fails', async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      const client = new ScramClient('sha256', 'juliet', 'pw', { flag: 'p=tls-exporter', cbData: Buffer.alloc(32, 8) });
      const { final } = await runScram(createMechanism('SCRAM-SHA-256-PLUS', ctx)!, client);
      expect(final).toEqual({ kind: 'failure', condition: 'not-authorized', text: 'channel-bindings-dont-match', username: 'juliet' });
    });

    it('-PLUS with the data of the other cb type fails', async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      const client = new ScramClient('sha1', 'juliet', 'pw', { flag: 'p=tls-exporter', cbData: cbData.get('tls-server-end-point') });
      const { final } = await runScram(createMechanism('SCRAM-SHA-1-PLUS', ctx)!, client);
      expectFailure(final!, 'not-authorized');
    });

    it('-PLUS where c= omits the cb data fails', async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      const client = new ScramClient('sha256', 'juliet', 'pw', { flag: 'p=tls-exporter' });
      expectFailure((await runScram(createMechanism('SCRAM-SHA-256-PLUS', ctx)!, client)).final!, 'not-authorized');
    });

    it('-PLUS with an unsupported cb type fails', async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: new Map([['tls-server-end-point', Buffer.alloc(32)]]) });
      for (const type of ['tls-exporter', 'tls-unique']) {
        const client = new ScramClient('sha256', 'juliet', 'pw', { flag: `p=${type}`, cbData: Buffer.alloc(32) });
        const step = expectFailure(await createMechanism('SCRAM-SHA-256-PLUS', ctx)!.step(client.first()), 'not-authorized');
        // A negotiation failure, not a password guess: clients fall back to the next mechanism unthrottled.
        expect(step).not.toHaveProperty('guess');
      }
    });

    it('-PLUS without p= fails', async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      for (const flag of ['n', 'y']) {
        const client = new ScramClient('sha256', 'juliet', 'pw', { flag });
        expectFailure(await createMechanism('SCRAM-SHA-256-PLUS', ctx)!.step(client.first()), 'malformed-request');
      }
    });

    it("p= on a non-PLUS mechanism fails", async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      const client = new ScramClient('sha256', 'juliet', 'pw', { flag: 'p=tls-exporter', cbData: cbData.get('tls-exporter') });
      expectFailure(await createMechanism('SCRAM-SHA-256', ctx)!.step(client.first()), 'malformed-request');
    });

    it("'y' flag when the server offers -PLUS is a downgrade → failure", async () => {
      const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: cbData });
      const client = new ScramClient('sha256', 'juliet', 'pw', { flag: 'y' });
      const step = expectFailure(await createMechanism('SCRAM-SHA-256', ctx)!.step(client.first()), 'not-authorized');
      expect(step.text).toBe('server-does-support-channel-binding');
    });

    it("'y' flag without channel bindings on the connection is fine (c=eSws)", async () => {
      const ctx = ctxWith({ juliet: 'pw' });
      const client = new ScramClient('sha1', 'juliet', 'pw', { flag: 'y' });
      const { final } = await runScram(createMechanism('SCRAM-SHA-1', ctx)!, client);
      expect(final?.kind).toBe('success');
      expect(client.final(Buffer.from('r=x,s=QSXCR+Q6sek8bf92,i=1')).toString()).toMatch(/^c=eSws,/);
    });

    it("'n' flag with c=biws vs. a wrong gs2 header in c=", async () => {
      const ctx = ctxWith({ juliet: 'pw' });
      const client = new ScramClient('sha1', 'juliet', 'pw', { cbOverride: Buffer.from('y,,').toString('base64') });
      expectFailure((await runScram(createMechanism('SCRAM-SHA-1', ctx)!, client)).final!, 'not-authorized');
    });
  });

  describe('malformed messages', () => {
    const firsts: Array<[string, string | Buffer]> = [
      ['no gs2 header', 'n=user,r=abc'],
      ['bad flag', 'x,,n=user,r=abc'],
      ['bad cb name', 'p=tls_exporter!,,n=user,r=abc'],
      ['bad authzid field', 'n,b=foo,n=user,r=abc'],
      ['empty authzid', 'n,a=,n=user,r=abc'],
      ['bad authzid escape', 'n,a=fo=6F,n=user,r=abc'],
      ['missing username', 'n,,r=abc'],
      ['missing nonce', 'n,,n=user'],
      ['empty nonce', 'n,,n=user,r='],
      ['nonce with bad chars', 'n,,n=user,r=ab c'],
      ['empty username', 'n,,n=,r=abc'],
      ['bad username escape', 'n,,n=us=er,r=abc'],
      ['reserved m=', 'n,,m=ext,n=user,r=abc'],
      ['bad extension', 'n,,n=user,r=abc,!!'],
      ['NUL', 'n,,n=us\0er,r=abc'],
      ['invalid UTF-8', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])],
    ];
    for (const [what, msg] of firsts) {
      it(`client-first: ${what}`, async () => {
        const mech = createMechanism('SCRAM-SHA-256', ctxWith({ user: 'pw' }))!;
        expectFailure(await mech.step(typeof msg === 'string' ? b(msg) : msg), 'malformed-request');
        // the mechanism is finished afterwards
        expectFailure(await mech.step(b('n,,n=user,r=abc')), 'malformed-request');
      });
    }

    it('client-first: extensions after the nonce are ignored', async () => {
      const mech = createMechanism('SCRAM-SHA-256', ctxWith({ user: 'pw' }))!;
      expectChallenge(await mech.step(b('n,,n=user,r=abc,x=whatever')));
    });

    it('client-first: an invalid localpart is not-authorized', async () => {
      const mech = createMechanism('SCRAM-SHA-256', ctxWith({ user: 'pw' }))!;
      expectFailure(await mech.step(b('n,,n=user@example.com,r=abc')), 'not-authorized');
    });

    const finals: Array<[string, (good: string) => string, string]> = [
      ['no proof', (g) => g.replace(/,p=.*$/, ''), 'malformed-request'],
      ['proof not base64', (g) => g.replace(/,p=.*$/, ',p=***'), 'malformed-request'],
      ['proof of wrong length', (g) => g.replace(/,p=.*$/, ',p=AAAA'), 'malformed-request'],
      ['no c=', (g) => g.replace(/^c=[^,]*,/, ''), 'malformed-request'],
      ['c= not base64', (g) => g.replace(/^c=[^,]*,/, 'c=b!ws,'), 'malformed-request'],
      ['no r=', (g) => g.replace(/,r=[^,]*/, ''), 'malformed-request'],
      ['m= in final', (g) => g.replace(/,p=/, ',m=x,p='), 'malformed-request'],
      ['attributes in wrong order', (g) => g.replace(/^(c=[^,]*),(r=[^,]*)/, '$2,$1'), 'malformed-request'],
      ['wrong nonce', (g) => g.replace(/,r=([^,]*)/, ',r=$1x'), 'not-authorized'],
      ['trailing garbage after proof', (g) => g + ',x=1', 'malformed-request'],
    ];
    for (const [what, tamper, condition] of finals) {
      it(`client-final: ${what} → ${condition}`, async () => {
        const mech = createMechanism('SCRAM-SHA-256', ctxWith({ user: 'pw' }))!;
        const client = new ScramClient('sha256', 'user', 'pw');
        const first = expectChallenge(await mech.step(client.first()));
        const good = client.final(first).toString();
        const step = expectFailure(await mech.step(b(tamper(good))), condition);
        expect(step.username).toBe('user');
      });
    }

    it('client-final: extension before the proof is accepted but then the proof covers it', async () => {
      const mech = createMechanism('SCRAM-SHA-256', ctxWith({ user: 'pw' }))!;
      const client = new ScramClient('sha256', 'user', 'pw');
      const first = expectChallenge(await mech.step(client.first()));
      // inserting an extension changes the AuthMessage, so the (unchanged) proof no longer verifies
      const good = client.final(first).toString();
      expectFailure(await mech.step(b(good.replace(/,p=/, ',x=ext,p='))), 'not-authorized');
    });
  });
});

describe('PLAIN', () => {
  const plain = (ctx: SaslContext, msg: string): Promise<SaslStep> => createMechanism('PLAIN', ctx)!.step(b(msg));

  it('succeeds with the right password (localpart and user@domain authcid)', async () => {
    const ctx = ctxWith({ juliet: 'r0m3o!' }, { domain: 'capulet.lit' });
    expect(await plain(ctx, '\0juliet\0r0m3o!')).toEqual({ kind: 'success', username: 'juliet' });
    expect(await plain(ctx, '\0Juliet@Capulet.lit\0r0m3o!')).toEqual({ kind: 'success', username: 'juliet' });
    expect(await plain(ctx, 'juliet\0juliet\0r0m3o!')).toEqual({ kind: 'success', username: 'juliet' });
    expect(await plain(ctx, 'juliet@capulet.lit\0juliet\0r0m3o!')).toEqual({ kind: 'success', username: 'juliet' });
    expect(ctx.lookups[0]).toBe('sha256:juliet');
  });

  it('waits for the response after an empty initial response', async () => {
    const ctx = ctxWith({ juliet: 'pw' });
    const mech = createMechanism('PLAIN', ctx)!;
    expect(expectChallenge(await mech.step(Buffer.alloc(0))).length).toBe(0);
    expect(await mech.step(b('\0juliet\0pw'))).toEqual({ kind: 'success', username: 'juliet' });
    expectFailure(await mech.step(b('\0juliet\0pw')), 'malformed-request');
  });

  it('falls back to SHA-1 credentials', async () => {
    const creds = deriveScramCredentials('sha1', 'pw', 50);
    const ctx: SaslContext = { lookup: (u, h) => (h === 'sha1' && u === 'old' ? creds : undefined), channelBindings: new Map(), secure: true };
    expect(await plain(ctx, '\0old\0pw')).toEqual({ kind: 'success', username: 'old' });
    expect(await plain(ctx, '\0old\0pW')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'old', guess: true });
  });

  it('fails with wrong password, unknown user, empty password', async () => {
    const ctx = ctxWith({ juliet: 'pw' });
    expect(await plain(ctx, '\0juliet\0nope')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
    expect(await plain(ctx, '\0nobody\0pw')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody', guess: true });
    expect(await plain(ctx, '\0juliet\0')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
    expectFailure(await plain(ctx, '\0juliet@other.lit/res\0pw'), 'not-authorized');
  });

  it('checks the domain of user@domain when the context has one', async () => {
    const ctx = ctxWith({ juliet: 'pw' }, { domain: 'capulet.lit' });
    expectFailure(await plain(ctx, '\0juliet@montague.lit\0pw'), 'not-authorized');
  });

  it('authzid of another user → invalid-authzid', async () => {
    const ctx = ctxWith({ juliet: 'pw', romeo: 'pw' }, { domain: 'capulet.lit' });
    expect(await plain(ctx, 'romeo\0juliet\0pw')).toEqual({ kind: 'failure', condition: 'invalid-authzid', username: 'juliet' });
    expectFailure(await plain(ctx, 'romeo@capulet.lit\0juliet\0pw'), 'invalid-authzid');
    expectFailure(await plain(ctx, 'juliet@capulet.lit/r\0juliet\0pw'), 'invalid-authzid');
  });

  it('malformed messages', async () => {
    const ctx = ctxWith({ juliet: 'pw' });
    expectFailure(await plain(ctx, 'juliet\0pw'), 'malformed-request');
    expectFailure(await plain(ctx, '\0juliet\0pw\0'), 'malformed-request');
    expectFailure(await plain(ctx, '\0\0pw'), 'malformed-request');
    expectFailure(await createMechanism('PLAIN', ctx)!.step(Buffer.from([0, 0x6a, 0, 0xc3])), 'malformed-request');
  });

  it('refuses on unencrypted connections unless allowed', async () => {
    expectFailure(await new PlainServer(ctxWith({ juliet: 'pw' }, { secure: false })).step(b('\0juliet\0pw')), 'encryption-required');
    const ctx = ctxWith({ juliet: 'pw' }, { secure: false, allowPlainWithoutTls: true });
    expect(await plain(ctx, '\0juliet\0pw')).toEqual({ kind: 'success', username: 'juliet' });
  });
});

describe('asynchronous lookup', () => {
  /** A context whose lookup returns a Promise that settles on a later tick, like a network database. */
  function asyncCtx(users: Record<string, string>): SaslContext & { lookups: string[] } {
    const sync = ctxWith(users);
    return {
      ...sync,
      async lookup(username, hash) {
        await new Promise((res) => setImmediate(res));
        return sync.lookup(username, hash);
      },
    };
  }

  it('SCRAM and PLAIN succeed and fail as with a synchronous lookup', async () => {
    for (const name of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
      const hash = HASH_OF[name]!;
      const ctx = asyncCtx({ juliet: 'r0m3o!' });
      const client = new ScramClient(hash, 'juliet', 'r0m3o!');
      const ok = await runScram(createMechanism(name, ctx)!, client);
      expect(ok.final?.kind).toBe('success');
      expect(ok.final?.kind === 'success' && ok.final.username).toBe('juliet');
      expect(ok.final?.kind === 'success' && client.verifyServerFinal(ok.final.data)).toBe(true);
      expect(ctx.lookups).toEqual([`${hash}:juliet`]);
      const wrong = await runScram(createMechanism(name, ctx)!, new ScramClient(hash, 'juliet', 'wrong'));
      expect(wrong.final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
      const unknown = await runScram(createMechanism(name, ctx)!, new ScramClient(hash, 'nobody', 'r0m3o!'));
      expect(expectChallenge(unknown.first).toString()).toMatch(/^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
      expect(unknown.final).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody', guess: true });
    }

    const ctx = asyncCtx({ juliet: 'r0m3o!' });
    const plain = (msg: string): Promise<SaslStep> => createMechanism('PLAIN', ctx)!.step(b(msg));
    expect(await plain('\0juliet\0r0m3o!')).toEqual({ kind: 'success', username: 'juliet' });
    expect(await plain('\0juliet\0wrong')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'juliet', guess: true });
    expect(await plain('\0nobody\0r0m3o!')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody', guess: true });
    expect(ctx.lookups).toEqual(['sha256:juliet', 'sha256:juliet', 'sha256:nobody', 'sha1:nobody']);

    // PLAIN's SHA-1 fallback also awaits
    const creds = deriveScramCredentials('sha1', 'pw', 50);
    const old: SaslContext = {
      lookup: async (u, h) => (h === 'sha1' && u === 'old' ? creds : undefined),
      channelBindings: new Map(),
      secure: true,
    };
    expect(await createMechanism('PLAIN', old)!.step(b('\0old\0pw'))).toEqual({ kind: 'success', username: 'old' });
    expect(await createMechanism('PLAIN', old)!.step(b('\0old\0pW'))).toEqual({
      kind: 'failure',
      condition: 'not-authorized',
      username: 'old',
      guess: true,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Real TLS

const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!haveOpenssl) {
  console.warn('openssl not found on PATH: skipping the certificate / TLS channel binding tests');
}

(haveOpenssl ? describe : describe.skip)('channel bindings over real TLS (openssl-generated certificates)', () => {
  let dir: string;
  const certs: Record<string, { key: string; cert: string }> = {};

  function gen(name: string, args: string[]): void {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    execFileSync(
      'openssl',
      ['req', '-x509', ...args, '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'],
      { stdio: 'pipe' },
    );
    certs[name] = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sasl-test-'));
    gen('rsa-sha256', ['-newkey', 'rsa:2048', '-sha256']);
    gen('ec-sha384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384']);
    gen('rsa-sha1', ['-newkey', 'rsa:2048', '-sha1']);
    gen('rsa-sha512', ['-newkey', 'rsa:2048', '-sha512']);
    gen('pss-sha384', ['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048', '-sha384']);
    gen('ed25519', ['-newkey', 'ed25519']);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('picks the RFC 5929 §4.1 hash from the certificate signature', () => {
    const der = (name: string): Buffer => new X509Certificate(certs[name]!.cert).raw;
    expect(endPointHash(der('rsa-sha256'))).toBe('sha256');
    expect(endPointHash(der('ec-sha384'))).toBe('sha384');
    expect(endPointHash(der('rsa-sha1'))).toBe('sha256');
    expect(endPointHash(der('rsa-sha512'))).toBe('sha512');
    expect(endPointHash(der('pss-sha384'))).toBe('sha384');
    expect(endPointHash(der('ed25519'))).toBeUndefined();
    expect(endPointHash(Buffer.from('not a certificate'))).toBeUndefined();
    expect(tlsServerEndPoint(der('ec-sha384'))).toEqual(createHash('sha384').update(der('ec-sha384')).digest());
  });

  interface Connected {
    server: Map<ChannelBindingType, Buffer>;
    clientExporter: Buffer;
    /** the same export without a context argument: identical under TLS 1.3 (RFC 8446 §7.5) */
    clientExporterNoContext: Buffer;
    clientCertRaw: Buffer;
    protocol: string | null;
  }

  async function connect(name: string, maxVersion: tls.SecureVersion): Promise<Connected> {
    const { key, cert } = certs[name]!;
    let serverSide!: (m: Map<ChannelBindingType, Buffer>) => void;
    const serverResult = new Promise<Map<ChannelBindingType, Buffer>>((res) => (serverSide = res));
    const server = tls.createServer({ key, cert, maxVersion }, (socket) => {
      serverSide(channelBindings(socket));
      socket.on('error', () => {});
      socket.end();
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const port = (server.address() as AddressInfo).port;
    try {
      const client = await new Promise<tls.TLSSocket>((res, rej) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion }, () => res(s));
        s.on('error', rej);
      });
      const result: Connected = {
        server: await serverResult,
        clientExporter: client.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)),
        // @types/node marks context as required; Node accepts it omitted.
        clientExporterNoContext: (client.exportKeyingMaterial as (length: number, label: string) => Buffer).call(
          client,
          32,
          'EXPORTER-Channel-Binding',
        ),
        clientCertRaw: client.getPeerCertificate(true).raw,
        protocol: client.getProtocol(),
      };
      client.on('error', () => {});
      client.destroy();
      return result;
    } finally {
      await new Promise<void>((res) => server.close(() => res()));
    }
  }

  it('TLS 1.3: tls-exporter and tls-server-end-point match the client side (RSA/SHA-256)', async () => {
    const c = await connect('rsa-sha256', 'TLSv1.3');
    expect(c.protocol).toBe('TLSv1.3');
    expect([...c.server.keys()].sort()).toEqual(['tls-exporter', 'tls-server-end-point']);
    expect(c.server.get('tls-exporter')).toEqual(c.clientExporter);
    expect(c.server.get('tls-exporter')!.length).toBe(32);
    expect(c.server.get('tls-exporter')).toEqual(c.clientExporterNoContext);
    expect(c.server.get('tls-server-end-point')).toEqual(createHash('sha256').update(c.clientCertRaw).digest());
  });

  it('TLS 1.3: tls-server-end-point uses SHA-384 for an ecdsa-with-SHA384 certificate', async () => {
    const c = await connect('ec-sha384', 'TLSv1.3');
    expect(c.server.get('tls-server-end-point')).toEqual(createHash('sha384').update(c.clientCertRaw).digest());
    expect(c.server.get('tls-exporter')).toEqual(c.clientExporter);
  });

  it('TLS 1.2: no tls-exporter, tls-server-end-point still present', async () => {
    const c = await connect('rsa-sha256', 'TLSv1.2');
    expect(c.protocol).toBe('TLSv1.2');
    expect(c.server.has('tls-exporter')).toBe(false);
    expect(c.server.get('tls-server-end-point')).toEqual(createHash('sha256').update(c.clientCertRaw).digest());
  });

  it('Ed25519 certificate: no tls-server-end-point', async () => {
    const c = await connect('ed25519', 'TLSv1.3');
    expect([...c.server.keys()]).toEqual(['tls-exporter']);
  });

  it('SCRAM-SHA-256-PLUS end to end with bindings from a real connection', async () => {
    const c = await connect('rsa-sha256', 'TLSv1.3');
    const ctx = ctxWith({ juliet: 'pw' }, { channelBindings: c.server });
    expect(offeredMechanisms(ctx)[0]).toBe('SCRAM-SHA-256-PLUS');
    for (const [type, data] of [
      ['tls-exporter', c.clientExporter],
      ['tls-server-end-point', createHash('sha256').update(c.clientCertRaw).digest()],
    ] as const) {
      const client = new ScramClient('sha256', 'juliet', 'pw', { flag: `p=${type}`, cbData: data });
      const { final } = await runScram(createMechanism('SCRAM-SHA-256-PLUS', ctx)!, client);
      expect(final?.kind).toBe('success');
      expect(final?.kind === 'success' && client.verifyServerFinal(final.data)).toBe(true);
    }
  });
});
