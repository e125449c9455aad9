import { X509Certificate } from 'node:crypto';
import { formatDpsTimestamp, type X509CertificateInfo } from '@dpskit/contracts';

export type { X509CertificateInfo };

/** Reads a certificate given as PEM or as base64 DER (the service takes both). */
export function readCertificate(text: string): X509Certificate {
  const trimmed = text.trim();
  return new X509Certificate(
    trimmed.startsWith('-----BEGIN') ? trimmed : Buffer.from(trimmed.replace(/\s+/g, ''), 'base64'),
  );
}

/**
 * Reads a certificate given as PEM or as base64 DER and describes it.
 * Returns a sentence saying what is wrong when it is neither.
 */
export function describeCertificate(
  text: string,
): { ok: true; info: X509CertificateInfo } | { ok: false; problem: string } {
  try {
    return { ok: true, info: certificateInfo(readCertificate(text)) };
  } catch (err) {
    return { ok: false, problem: `is not a PEM or base64 DER X.509 certificate (${(err as Error).message})` };
  }
}

/** `X509CertificateInfo` as the service reports it. */
export function certificateInfo(certificate: X509Certificate): X509CertificateInfo {
  return {
    subjectName: distinguishedName(certificate.subject),
    sha1Thumbprint: certificate.fingerprint.replaceAll(':', ''),
    sha256Thumbprint: certificate.fingerprint256.replaceAll(':', ''),
    issuerName: distinguishedName(certificate.issuer),
    notBeforeUtc: formatDpsTimestamp(new Date(certificate.validFrom)),
    notAfterUtc: formatDpsTimestamp(new Date(certificate.validTo)),
    serialNumber: certificate.serialNumber.toUpperCase(),
    version: 3,
  };
}

/** The subject's common name (the last CN when there are several), or undefined. */
export function commonName(certificate: X509Certificate): string | undefined {
  const names = certificate.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => unescapeRfc2253(line.slice(3)));
  return names[names.length - 1];
}

/**
 * Node prints one RDN a line in encoding order (`C=US\nCN=x`); .NET, which the service runs on,
 * prints them most specific first on one line (`CN=x, C=US`), quoting values that hold a separator.
 */
function distinguishedName(lines: string): string {
  return lines
    .split('\n')
    .filter(Boolean)
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf('=');
      const value = unescapeRfc2253(rdn.slice(eq + 1));
      return /[,+="]/.test(value) ? `${rdn.slice(0, eq)}="${value.replaceAll('"', '""')}"` : rdn;
    })
    .join(', ');
}

/** Node escapes `,` `+` `"` `\\` `<` `>` `;` in names with a backslash (RFC 2253). */
function unescapeRfc2253(value: string): string {
  return value.replace(/\\(.)/g, '$1');
}
