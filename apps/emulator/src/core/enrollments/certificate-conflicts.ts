import type { EnrollmentKind } from './store.js';
import { describeCertificate } from './x509.js';

/** Where an enrollment names a certificate that identifies its devices, by the certificate's SHA-256 thumbprint. */
export interface CertificateUse {
  kind: EnrollmentKind;
  id: string;
  /** The attestation field, e.g. `clientCertificates.primary` or `caReferences.secondary`. */
  field: string;
  sha256Thumbprint: string;
}

type X509Entry = { certificate?: unknown; info?: { sha256Thumbprint?: unknown } | null } | null | undefined;
interface AttestationLike {
  type: string;
  x509?: Record<string, unknown> | null;
}

/**
 * The certificates that say which devices an enrollment takes: an individual enrollment's client
 * certificates; an enrollment group's signing certificates and the CA certificates it references
 * (`caCertificates`: PEM by lower-cased name). Individual enrollments' signing certificates are left
 * out: they only narrow the one device the registration id already names.
 */
export function certificateUses(
  kind: EnrollmentKind,
  id: string,
  attestation: AttestationLike,
  caCertificates: ReadonlyMap<string, string> = new Map(),
): CertificateUse[] {
  if (attestation.type !== 'x509' || !attestation.x509) return [];
  const x509 = attestation.x509;
  const uses: CertificateUse[] = [];
  const add = (field: string, sha256Thumbprint: string | undefined) => {
    if (sha256Thumbprint) uses.push({ kind, id, field, sha256Thumbprint: sha256Thumbprint.toUpperCase() });
  };
  const set = kind === 'individual' ? 'clientCertificates' : 'signingCertificates';
  for (const slot of ['primary', 'secondary'] as const) {
    const entry = (x509[set] as Record<string, X509Entry> | null | undefined)?.[slot];
    add(`${set}.${slot}`, thumbprintOf(entry));
  }
  if (kind === 'group') {
    const references = x509.caReferences as Record<string, unknown> | null | undefined;
    for (const slot of ['primary', 'secondary'] as const) {
      const name = references?.[slot];
      const pem = typeof name === 'string' ? caCertificates.get(name.toLowerCase()) : undefined;
      const described = pem === undefined ? undefined : describeCertificate(pem);
      add(`caReferences.${slot}`, described?.ok ? described.info.sha256Thumbprint : undefined);
    }
  }
  return uses;
}

/**
 * The first of `candidate`'s certificates that another enrollment of the same kind already uses:
 * two individual enrollments with one client certificate, or two enrollment groups trusting one
 * signing certificate, would leave which enrollment a device belongs to to chance. An enrollment
 * may name one certificate in both of its own slots.
 */
export function findCertificateConflict(
  candidate: readonly CertificateUse[],
  others: Iterable<CertificateUse>,
): { use: CertificateUse; other: CertificateUse } | undefined {
  if (candidate.length === 0) return undefined;
  const [first] = candidate;
  const byThumbprint = new Map(candidate.map((use) => [use.sha256Thumbprint, use]));
  for (const other of others) {
    if (!first || other.kind !== first.kind || other.id.toLowerCase() === first.id.toLowerCase()) continue;
    const use = byThumbprint.get(other.sha256Thumbprint);
    if (use) return { use, other };
  }
  return undefined;
}

/** The sentence for a conflict, naming the field, the thumbprint and the enrollment that has the certificate. */
export function describeCertificateConflict(conflict: { use: CertificateUse; other: CertificateUse }): string {
  const { use, other } = conflict;
  const owner = other.kind === 'group' ? `enrollment group "${other.id}"` : `individual enrollment "${other.id}"`;
  return `Invalid attestation.x509.${use.field}: the certificate (SHA-256 ${use.sha256Thumbprint}) is already the ${other.field} of ${owner}; a certificate may identify the devices of one ${use.kind === 'group' ? 'enrollment group' : 'individual enrollment'} only.`;
}

function thumbprintOf(entry: X509Entry): string | undefined {
  if (!entry) return undefined;
  const given = entry.info?.sha256Thumbprint;
  if (typeof given === 'string' && given !== '') return given;
  if (typeof entry.certificate !== 'string') return undefined;
  const described = describeCertificate(entry.certificate);
  return described.ok ? described.info.sha256Thumbprint : undefined;
}
