import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';
import type { Config } from './config';
import { ConfigError } from './config';

export interface TlsMaterial {
  context: SecureContext;
  /** PEM, for listeners that take key and certificate rather than a context (tls.createServer). */
  key: Buffer;
  cert: Buffer;
  certFile: string;
  keyFile: string;
  generated: boolean;
}

/** TLS 1.2 is the floor (RFC 9325 / the requirement); Node picks 1.3 when the client can. */
const MIN_TLS = 'TLSv1.2' as const;

/**
 * Loads the configured certificate, or on first start generates a self-signed one for all
 * hosted domains (and their subdomains) into <dataDir>/certs, and says where it is.
 */
export async function loadTlsMaterial(cfg: Config, log: Logger): Promise<TlsMaterial> {
  let certFile: string;
  let keyFile: string;
  let generated = false;
  if (cfg.tls.cert && cfg.tls.key) {
    certFile = cfg.tls.cert;
    keyFile = cfg.tls.key;
    for (const f of [certFile, keyFile]) if (!existsSync(f)) throw new ConfigError(`TLS file ${f} does not exist (tls.cert / tls.key)`);
  } else {
    const dir = join(cfg.dataDir, 'certs');
    certFile = join(dir, `${cfg.domains[0]}.crt`);
    keyFile = join(dir, `${cfg.domains[0]}.key`);
    if (!existsSync(certFile) || !existsSync(keyFile) || !coversDomains(readFileSync(certFile, 'utf8'), cfg.domains)) {
      await generateSelfSigned(cfg.domains, certFile, keyFile);
      generated = true;
      log.warn({ cert: certFile, key: keyFile, domains: cfg.domains },
        'generated a self-signed certificate: clients will ask to trust it; set tls.cert and tls.key for a real one');
    }
  }
  let context: SecureContext;
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  try {
    context = createSecureContext({ cert, key, minVersion: MIN_TLS });
  } catch (err) {
    throw new ConfigError(`cannot use the TLS certificate ${certFile} with key ${keyFile}: ${(err as Error).message}`);
  }
  log.info({ cert: certFile }, 'TLS certificate loaded');
  return { context, key, cert, certFile, keyFile, generated };
}

function coversDomains(pem: string, domains: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (new Date(cert.validTo).getTime() < Date.now() + 86400_000) return false;
    return domains.every((d) => cert.checkHost(d) !== undefined);
  } catch {
    return false;
  }
}

async function generateSelfSigned(domains: readonly string[], certFile: string, keyFile: string): Promise<void> {
  const altNames = domains.flatMap((d) => [{ type: 2 as const, value: d }, { type: 2 as const, value: `*.${d}` }]);
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 10);
  const pems = await generate([{ name: 'commonName', value: domains[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  mkdirSync(join(certFile, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
}

export { MIN_TLS };
