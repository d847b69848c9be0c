/**
 * Channel binding data for SCRAM-*-PLUS: tls-exporter (RFC 9266) and tls-server-end-point
 * (RFC 5929 §4).
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ChannelBindingType } from './types';

/** RFC 9266 §2: label and length of the tls-exporter channel binding. */
export const TLS_EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const TLS_EXPORTER_LENGTH = 32;

/**
 * Reads channel binding data from a server-side TLSSocket: tls-exporter only when TLS 1.3 is
 * negotiated (RFC 9266 §3: not defined for earlier versions without extended master secret, so we
 * only offer it for 1.3); tls-server-end-point = hash of our own certificate with the hash RFC 5929
 * §4.1 prescribes. Returns a map of the types available (empty when nothing can be read).
 */
export function channelBindings(socket: TLSSocket): Map<ChannelBindingType, Buffer> {
  const out = new Map<ChannelBindingType, Buffer>();
  if (socket.getProtocol() === 'TLSv1.3') {
    try {
      out.set('tls-exporter', socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0)));
    } catch {
      // not available on this socket
    }
  }
  const cert = socket.getCertificate();
  const raw = cert !== null && 'raw' in cert ? (cert as { raw?: unknown }).raw : undefined;
  if (Buffer.isBuffer(raw)) {
    const data = tlsServerEndPoint(raw);
    if (data !== undefined) out.set('tls-server-end-point', data);
  }
  return out;
}

/** tls-server-end-point data for a DER certificate, or undefined when its signature hash is unknown. */
export function tlsServerEndPoint(der: Buffer): Buffer | undefined {
  const hash = endPointHash(der);
  return hash === undefined ? undefined : createHash(hash).update(der).digest();
}

// --- minimal DER reading, just enough to find the certificate's signatureAlgorithm ---

interface Tlv {
  tag: number;
  /** offset of the contents */
  start: number;
  /** offset just past the contents */
  end: number;
}

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('DER: truncated');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: high tag numbers unsupported');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw new Error('DER: truncated');
  return { tag, start: p, end: p + len };
}

function oidToString(bytes: Buffer): string {
  if (bytes.length === 0) throw new Error('DER: empty OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join('.');
}

const SEQUENCE = 0x30;
const OID = 0x06;

/** Reads an AlgorithmIdentifier: SEQUENCE { algorithm OID, parameters ANY OPTIONAL }. */
function readAlgorithmIdentifier(buf: Buffer, tlv: Tlv): { oid: string; params?: Tlv } {
  if (tlv.tag !== SEQUENCE) throw new Error('DER: AlgorithmIdentifier is not a SEQUENCE');
  const oid = readTlv(buf, tlv.start, tlv.end);
  if (oid.tag !== OID) throw new Error('DER: expected OID');
  const params = oid.end < tlv.end ? readTlv(buf, oid.end, tlv.end) : undefined;
  return { oid: oidToString(buf.subarray(oid.start, oid.end)), params };
}

type NodeHash = 'sha256' | 'sha224' | 'sha384' | 'sha512';

/** Hash algorithm OIDs (NIST + SHA-1 + MD5) → hash to use per RFC 5929 §4.1. */
const HASH_OIDS: Record<string, NodeHash> = {
  '1.2.840.113549.2.5': 'sha256', // md5 → sha256
  '1.3.14.3.2.26': 'sha256', // sha1 → sha256
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};

/** Signature algorithm OIDs → hash to use per RFC 5929 §4.1. */
const SIGNATURE_OIDS: Record<string, NodeHash> = {
  // RSA PKCS#1 v1.5
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.3.14.3.2.29': 'sha256', // sha1WithRSASignature (OIW)
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  // ECDSA
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  // DSA
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';

/**
 * RFC 5929 §4.1: the hash of the certificate's signatureAlgorithm, except MD5/SHA-1 → SHA-256.
 * Undefined for algorithms with no single hash (e.g. Ed25519/Ed448) or unparseable certificates:
 * then tls-server-end-point is not offered.
 */
export function endPointHash(der: Buffer): NodeHash | undefined {
  try {
    const cert = readTlv(der, 0, der.length);
    if (cert.tag !== SEQUENCE) return undefined;
    const tbs = readTlv(der, cert.start, cert.end);
    if (tbs.tag !== SEQUENCE) return undefined;
    const alg = readAlgorithmIdentifier(der, readTlv(der, tbs.end, cert.end));
    if (alg.oid === RSASSA_PSS) {
      // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, ... }
      if (alg.params === undefined || alg.params.tag !== SEQUENCE) return 'sha256';
      if (alg.params.start === alg.params.end) return 'sha256';
      const first = readTlv(der, alg.params.start, alg.params.end);
      if (first.tag !== 0xa0) return 'sha256'; // hashAlgorithm absent: default SHA-1 → SHA-256
      const hashAlg = readAlgorithmIdentifier(der, readTlv(der, first.start, first.end));
      return HASH_OIDS[hashAlg.oid];
    }
    return SIGNATURE_OIDS[alg.oid];
  } catch {
    return undefined;
  }
}
