import { type PeerCertificate, TLSSocket } from 'node:tls';

/** Deepest chain read from a client; real device chains are two to four certificates. */
const MAX_CHAIN = 10;

/**
 * TLS options that ask every client for a certificate without requiring one: X.509 devices
 * present theirs, symmetric-key devices and service clients none, on the same listener. The
 * handshake never fails for a certificate: attestation checks it against the enrollments and
 * answers 401 with the reason in the log, as for a bad SAS token.
 */
export const CLIENT_CERTIFICATE_TLS_OPTIONS = { requestCert: true, rejectUnauthorized: false } as const;

/**
 * The certificate chain a TLS client presented, DER, its own certificate first, then the issuers
 * it sent in order. Empty when it presented none, or when `socket` is not a TLS socket.
 */
export function peerCertificateChain(socket: unknown): Buffer[] {
  if (!(socket instanceof TLSSocket)) return [];
  const leaf = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  if (!leaf?.raw) return [];
  const chain = [leaf.raw];
  let current = leaf;
  while (chain.length < MAX_CHAIN) {
    const issuer = current.issuerCertificate as (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined;
    // A self-signed certificate is its own issuer.
    if (!issuer?.raw || issuer === current || issuer.raw.equals(current.raw)) break;
    chain.push(issuer.raw);
    current = issuer;
  }
  return chain;
}
