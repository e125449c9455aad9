import { X509Certificate } from 'node:crypto';
import { formatDpsTimestamp } from '@dpskit/contracts';

/** `X509CertificateInfo` as the service reports it for an uploaded certificate. */
export interface X509CertificateInfo {
  subjectName: string;
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  issuerName: string;
  notBeforeUtc: string;
  notAfterUtc: string;
  serialNumber: string;
  version: number;
}

/**
 * Reads a certificate given as PEM or as base64 DER (the service takes both) and describes it.
 * Returns a sentence saying what is wrong when it is neither.
 */
export function describeCertificate(
  text: string,
): { ok: true; info: X509CertificateInfo } | { ok: false; problem: string } {
  const trimmed = text.trim();
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(
      trimmed.startsWith('-----BEGIN') ? trimmed : Buffer.from(trimmed.replace(/\s+/g, ''), 'base64'),
    );
  } catch (err) {
    return { ok: false, problem: `is not a PEM or base64 DER X.509 certificate (${(err as Error).message})` };
  }
  return {
    ok: true,
    info: {
      subjectName: distinguishedName(certificate.subject),
      sha1Thumbprint: certificate.fingerprint.replaceAll(':', ''),
      sha256Thumbprint: certificate.fingerprint256.replaceAll(':', ''),
      issuerName: distinguishedName(certificate.issuer),
      notBeforeUtc: formatDpsTimestamp(new Date(certificate.validFrom)),
      notAfterUtc: formatDpsTimestamp(new Date(certificate.validTo)),
      serialNumber: certificate.serialNumber.toUpperCase(),
      version: 3,
    },
  };
}

/**
 * Node prints one RDN a line in encoding order (`C=US\nCN=x`); .NET, which the service runs on,
 * prints them most specific first on one line (`CN=x, C=US`).
 */
function distinguishedName(lines: string): string {
  return lines.split('\n').filter(Boolean).reverse().join(', ');
}
