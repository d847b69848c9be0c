/**
 * The benchmark's TLS certificate: one self-signed certificate for "localhost" (and
 * *.localhost), made once per invocation in the cache folder and given to every server that
 * runs with the tls feature, so all three present the same key (ECDSA P-256, the key type our
 * server generates for itself) and the handshake costs compared are those of one key.
 * Made with the openssl CLI (installed with the peers' OpenSSL anyway).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchCert {
  /** PEM certificate. */
  certFile: string;
  /** PEM private key (unencrypted). */
  keyFile: string;
  /** Certificate and key in one PEM file (ejabberd's certfiles). */
  pemFile: string;
}

export function benchCertificate(cacheDir: string, log: (m: string) => void): BenchCert {
  const cert: BenchCert = {
    certFile: join(cacheDir, 'localhost.crt'),
    keyFile: join(cacheDir, 'localhost.key'),
    pemFile: join(cacheDir, 'localhost.pem'),
  };
  if (existsSync(cert.pemFile)) return cert;
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '3650',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,DNS:*.localhost',
      '-keyout', cert.keyFile, '-out', cert.certFile,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`could not make the bench certificate with openssl: ${(err as Error).message}`);
  }
  // Written last: its presence means both files above are complete.
  writeFileSync(cert.pemFile, readFileSync(cert.certFile, 'utf8') + readFileSync(cert.keyFile, 'utf8'), { mode: 0o600 });
  log(`tls: self-signed ECDSA P-256 certificate for localhost in ${cacheDir}`);
  return cert;
}
