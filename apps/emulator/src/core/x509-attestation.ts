import { X509Certificate } from 'node:crypto';
import type { X509RuntimeContext } from '@dpskit/contracts';
import type { AttestationResult } from './attestation.js';
import { certificateInfo, commonName, readCertificate } from './enrollments/x509.js';
import type { EmulatedEnrollment, EnrollmentSet, X509TrustedCertificate } from './model.js';

/** A device's X.509 attestation: the certificates it presented in the TLS handshake. */
export interface X509AttestationInput {
  registrationId: string;
  /** DER, the device's own (leaf) certificate first, then the issuers it sent, in order. */
  chain: readonly Uint8Array[];
  now: Date;
}

type Fail = (reason: X509FailureReason, detail: string) => AttestationResult;

export type X509FailureReason =
  | 'certificate-invalid'
  | 'certificate-expired'
  | 'cn-mismatch'
  | 'certificate-mismatch'
  | 'untrusted-chain'
  | 'wrong-attestation'
  | 'no-matching-enrollment';

/**
 * Verifies a device's certificate chain as DPS documents it (concepts-x509-attestation, "DPS order
 * of operations with certificates"):
 *
 * - the registration id is the subject CN of the device's certificate;
 * - an individual enrollment for the registration id is the most specific entry: when one exists,
 *   only it is tried (its `clientCertificates` must hold the device's certificate; a disabled one
 *   blocks the device even if a group would match);
 * - otherwise the enrollment group whose signing certificate (or CA reference) is nearest to the
 *   device's certificate in its chain applies: an intermediate's group before the root's;
 * - every certificate on the way, the trusted one included, must be within its validity dates and
 *   each issuer a CA; each signature is checked.
 *
 * The TLS handshake proved that the device holds the private key of its certificate. No two
 * enrollment groups trust one certificate (the service API and the config file refuse it); were
 * they to, the first in id order would win.
 */
export function attestX509(input: X509AttestationInput, enrollments: EnrollmentSet): AttestationResult {
  const { registrationId, now } = input;
  const fail: Fail = (reason, detail) => ({ ok: false, registrationId, reason, detail });

  let parsed: X509Certificate[];
  try {
    parsed = input.chain.map((der) => new X509Certificate(der));
  } catch (err) {
    return fail('certificate-invalid', `the client certificate cannot be read (${(err as Error).message})`);
  }
  const chain = presentedChain(parsed);
  const leaf = chain[0];
  if (!leaf) return fail('certificate-invalid', 'no client certificate was presented');
  const cn = commonName(leaf);
  if (cn === undefined || cn.toLowerCase() !== registrationId.toLowerCase()) {
    return fail(
      'cn-mismatch',
      `the certificate's subject CN ${cn === undefined ? 'is missing' : `"${cn}"`} is not the registration id "${registrationId}" (DPS takes the registration id from the CN)`,
    );
  }
  const leafProblem = validityProblem(leaf, now, 'the device certificate');
  if (leafProblem) return fail('certificate-expired', leafProblem);

  const context = (signer?: X509Certificate): X509RuntimeContext => ({
    clientCertificate: leaf.raw.toString('base64'),
    certificateInfo: certificateInfo(leaf),
    ...(chain.length > 1 ? { certificateChain: chain.slice(1).map((c) => c.raw.toString('base64')) } : {}),
    ...(signer ? { signingCertificateInfo: certificateInfo(signer) } : {}),
  });

  const individual = enrollments.individuals.get(registrationId.toLowerCase());
  if (individual) {
    if (!individual.x509) {
      return fail(
        'wrong-attestation',
        `individual enrollment "${individual.id}" uses ${individual.record.attestation.type} attestation, but the device presented a certificate and no SAS token`,
      );
    }
    const trusted = individual.x509.certificates;
    const clients = trusted.filter((t) => t.source === 'clientCertificates');
    for (const entry of clients) {
      const certificate = parseTrusted(entry);
      if (certificate?.raw.equals(leaf.raw)) {
        return { ok: true, registrationId, enrollment: individual, keyUsed: entry.slot, x509: context() };
      }
    }
    const signers = trusted.filter((t) => t.source !== 'clientCertificates');
    const found = signers.length > 0 ? nearestSigner(chain, signers, now) : undefined;
    if (found && 'depth' in found) {
      return { ok: true, registrationId, enrollment: individual, keyUsed: found.slot, x509: context(found.signer) };
    }
    if (found && 'problem' in found)
      return fail(found.reason, `${found.problem} (individual enrollment "${individual.id}")`);
    return fail(
      'certificate-mismatch',
      `the device certificate (SHA-256 ${certificateInfo(leaf).sha256Thumbprint}) is not the primary or secondary certificate of individual enrollment "${individual.id}"`,
    );
  }

  let best:
    | { enrollment: EmulatedEnrollment; depth: number; slot: 'primary' | 'secondary'; signer: X509Certificate }
    | undefined;
  let firstProblem: { reason: X509FailureReason; problem: string } | undefined;
  for (const group of enrollments.groups) {
    if (!group.x509) continue;
    const found = nearestSigner(chain, group.x509.certificates, now);
    if (!found) continue;
    if ('problem' in found) {
      firstProblem ??= { reason: found.reason, problem: `${found.problem} (enrollment group "${group.id}")` };
      continue;
    }
    if (!best || found.depth < best.depth) best = { enrollment: group, ...found };
  }
  if (best) {
    return { ok: true, registrationId, enrollment: best.enrollment, keyUsed: best.slot, x509: context(best.signer) };
  }
  if (firstProblem) return fail(firstProblem.reason, firstProblem.problem);
  return fail(
    'no-matching-enrollment',
    `no individual enrollment for "${registrationId}", and no enrollment group's signing certificate or CA reference issued the device's chain (device certificate issued by "${certificateInfo(leaf).issuerName}", ${chain.length - 1} further certificate(s) presented)`,
  );
}

type SignerMatch =
  | { depth: number; slot: 'primary' | 'secondary'; signer: X509Certificate }
  | { reason: X509FailureReason; problem: string };

/**
 * The trusted certificate nearest to the leaf that issued the chain: depth 1 when it signed the
 * device's certificate, 2 when it signed the first intermediate the device sent, and so on. A
 * problem when the chain does reach a trusted certificate but breaks a rule on the way (expired,
 * not a CA); undefined when it reaches none.
 */
function nearestSigner(
  chain: PresentedChain,
  trusted: readonly X509TrustedCertificate[],
  now: Date,
): SignerMatch | undefined {
  const signers = trusted.flatMap((entry) => {
    const certificate = parseTrusted(entry);
    return certificate ? [{ slot: entry.slot, certificate }] : [];
  });
  for (let i = 0; i < chain.length; i++) {
    const current = chain[i] as X509Certificate;
    // The device may send the trusted certificate itself as part of its chain.
    const sent = i > 0 ? signers.find((s) => s.certificate.raw.equals(current.raw)) : undefined;
    const issuer = sent ? undefined : signers.find((s) => issuedBy(current, s.certificate));
    const match = sent ? { signer: sent, depth: i } : issuer ? { signer: issuer, depth: i + 1 } : undefined;
    if (match) {
      const path = chain.slice(0, match.depth);
      for (const [index, certificate] of path.entries()) {
        const problem = validityProblem(
          certificate,
          now,
          index === 0
            ? 'the device certificate'
            : `intermediate certificate "${certificateInfo(certificate).subjectName}"`,
        );
        if (problem) return { reason: 'certificate-expired', problem };
      }
      const signer = match.signer.certificate;
      const signerProblem = validityProblem(
        signer,
        now,
        `signing certificate "${certificateInfo(signer).subjectName}"`,
      );
      if (signerProblem) return { reason: 'certificate-expired', problem: signerProblem };
      const notCa = [...path.slice(1), signer].find((c) => !c.ca);
      if (notCa) {
        return {
          reason: 'untrusted-chain',
          problem: `"${certificateInfo(notCa).subjectName}" issued a certificate in the chain but is not a CA certificate (basicConstraints)`,
        };
      }
      return { depth: match.depth, slot: match.signer.slot, signer };
    }
    if (!chain.linked(i)) return undefined;
  }
  return undefined;
}

/** The presented certificates, with whether each was issued by the next one, verified once per request. */
type PresentedChain = readonly X509Certificate[] & { linked(index: number): boolean };

function presentedChain(certificates: X509Certificate[]): PresentedChain {
  const links: (boolean | undefined)[] = [];
  return Object.assign(certificates, {
    linked(index: number): boolean {
      const next = certificates[index + 1];
      if (!next) return false;
      links[index] ??= issuedBy(certificates[index] as X509Certificate, next);
      return links[index] as boolean;
    },
  });
}

/**
 * Names and signature only: `checkIssued` (OpenSSL's X509_check_issued) also refuses issuers
 * without keyCertSign, which would turn "this issuer is not a CA" into a vaguer "no enrollment".
 * Whether each issuer is a CA is checked on the path that reaches a trusted certificate.
 */
function issuedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  return certificate.issuer === issuer.subject && certificate.verify(issuer.publicKey);
}

/** Parsed once per enrollment set (the set is rebuilt, with new entries, when enrollments change). */
const parsed = new WeakMap<X509TrustedCertificate, X509Certificate | null>();

function parseTrusted(entry: X509TrustedCertificate): X509Certificate | undefined {
  if (!entry.certificate) return undefined;
  let certificate = parsed.get(entry);
  if (certificate === undefined) {
    try {
      certificate = readCertificate(entry.certificate);
    } catch {
      certificate = null; // validated when the enrollment was written; a broken one trusts nothing
    }
    parsed.set(entry, certificate);
  }
  return certificate ?? undefined;
}

function validityProblem(certificate: X509Certificate, now: Date, what: string): string | undefined {
  const from = new Date(certificate.validFrom);
  const to = new Date(certificate.validTo);
  if (now < from) return `${what} is not valid before ${from.toISOString()}`;
  if (now > to) return `${what} expired ${to.toISOString()}`;
  return undefined;
}
