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

/** Streams that run over a TLS connection (WebSockets), by the TLS socket carrying them. */
const carriedBy = new WeakMap<object, TLSSocket>();

/**
 * Says that `stream` (e.g. a WebSocket's stream handed to the MQTT broker) runs over `socket`, so
 * that `peerCertificateChain(stream)` reads the client certificate of that TLS connection.
 */
export function carriedOverTls(stream: object, socket: unknown): void {
  if (socket instanceof TLSSocket) carriedBy.set(stream, socket);
}

/** The TLS socket under `stream`: itself, or the one it was registered with by `carriedOverTls`. */
export function tlsCarrier(stream: object): TLSSocket | undefined {
  return stream instanceof TLSSocket ? stream : carriedBy.get(stream);
}

/**
 * The certificate chain a TLS client presented, DER, its own certificate first, then the issuers
 * it sent in order. Empty when it presented none, or when `socket` is neither a TLS socket nor a
 * stream registered with `carriedOverTls`.
 */
export function peerCertificateChain(socket: unknown): Buffer[] {
  if (typeof socket === 'object' && socket !== null && !(socket instanceof TLSSocket)) {
    socket = carriedBy.get(socket) ?? socket;
  }
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
