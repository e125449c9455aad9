import type { X509RuntimeContext } from '@dpskit/contracts';
import {
  checkSasTokenClaims,
  REGISTRATION_KEY_NAME,
  registrationIdProblem,
  registrationResource,
  type SasTokenClaims,
  SasTokenError,
  sasTokenSignedBy,
  verifySasToken,
} from '@dpskit/contracts';
import { groupDeviceKey } from './group-keys.js';
import type { EmulatedEnrollment, EnrollmentSet } from './model.js';
import { attestX509, type X509FailureReason } from './x509-attestation.js';

export type AttestationFailureReason =
  | 'invalid-registration-id'
  | 'scope-mismatch'
  | 'missing-token'
  | 'malformed'
  | 'expired'
  | 'resource-mismatch'
  | 'key-name-mismatch'
  | 'signature-mismatch'
  | 'no-matching-enrollment'
  | 'unsupported-attestation'
  | X509FailureReason;

export type AttestationResult =
  | {
      ok: true;
      registrationId: string;
      enrollment: EmulatedEnrollment;
      /** The key, or the certificate, that matched. */
      keyUsed: 'primary' | 'secondary';
      /** X.509 devices: what the webhook's `deviceRuntimeContext.x509` carries. */
      x509?: X509RuntimeContext;
    }
  | { ok: false; registrationId: string; reason: AttestationFailureReason; detail: string };

export interface AttestationInput {
  /** The service's ID scope. */
  idScope: string;
  /** The ID scope the device addressed (MQTT username, URL path). */
  requestedIdScope: string;
  registrationId: string;
  /** `SharedAccessSignature sr=…` from the MQTT password or the HTTP `Authorization` header. */
  token: string | undefined;
  /**
   * The TLS client certificate chain, DER, the device's own certificate first (empty or absent
   * when the device presented none). Used when no SAS token is presented.
   */
  clientCertificates?: readonly Uint8Array[];
  now: Date;
}

/**
 * Finds the enrollment whose key signed the device's SAS token. As DPS does, an individual
 * enrollment for the registration id takes precedence: when one exists, only its keys are tried,
 * so a disabled or re-keyed individual enrollment blocks a device even if a group would match.
 * Otherwise every symmetric-key group is tried, primary then secondary derived key. A device
 * that presents no token but a TLS client certificate is attested by its certificate chain
 * (`attestX509`).
 */
export function attest(input: AttestationInput, enrollments: EnrollmentSet): AttestationResult {
  const { registrationId } = input;
  const fail = (reason: AttestationFailureReason, detail: string): AttestationResult => ({
    ok: false,
    registrationId,
    reason,
    detail,
  });

  const idProblem = registrationIdProblem(registrationId);
  if (idProblem) return fail('invalid-registration-id', idProblem);
  if (input.requestedIdScope.toLowerCase() !== input.idScope.toLowerCase()) {
    return fail('scope-mismatch', `ID scope "${input.requestedIdScope}" is not this service's "${input.idScope}"`);
  }
  const other = enrollments.unverifiable?.individuals.get(registrationId.toLowerCase());
  if (other && !enrollments.individuals.has(registrationId.toLowerCase())) {
    // TPM devices authenticate with a nonce challenge: refuse clearly rather than with "no
    // enrollment" or "no token".
    return fail(
      'unsupported-attestation',
      `individual enrollment "${other.id}" uses ${other.attestationType} attestation, which the emulator cannot verify (symmetric keys and X.509 only)`,
    );
  }
  if (!input.token && input.clientCertificates?.length) {
    return attestX509({ registrationId, chain: input.clientCertificates, now: input.now }, enrollments);
  }
  if (!input.token) {
    return fail(
      'missing-token',
      'neither a SAS token nor a TLS client certificate was presented (symmetric-key devices send a SAS token, X.509 devices their certificate)',
    );
  }

  const expectedResource = registrationResource(input.idScope, registrationId);
  const verify = (keys: string[]): { ok: true; keyIndex: number } | { ok: false; error: SasTokenError } => {
    try {
      return {
        ok: true,
        keyIndex: verifySasToken(input.token as string, {
          keys,
          expectedResource,
          expectedKeyName: REGISTRATION_KEY_NAME,
          now: input.now,
        }).keyIndex,
      };
    } catch (err) {
      if (err instanceof SasTokenError) return { ok: false, error: err };
      // A key that is not base64 cannot sign anything; config validation normally prevents it.
      return { ok: false, error: new SasTokenError('signature-mismatch', (err as Error).message) };
    }
  };
  const keyUsed = (index: number) => (index === 0 ? 'primary' : 'secondary');

  const individual = enrollments.individuals.get(registrationId.toLowerCase());
  if (individual) {
    if (!individual.keys) {
      return fail(
        'unsupported-attestation',
        `individual enrollment "${individual.id}" uses ${individual.record.attestation.type} attestation: the device must present its certificate in the TLS handshake, not a SAS token`,
      );
    }
    const result = verify([individual.keys.primaryKey, individual.keys.secondaryKey]);
    if (!result.ok)
      return fail(result.error.reason, `${result.error.message} (individual enrollment "${individual.id}")`);
    return { ok: true, registrationId, enrollment: individual, keyUsed: keyUsed(result.keyIndex) };
  }

  // Each group's derived keys against one reading of the token: what does not depend on the key
  // (format, expiry, resource, key name) is checked once, at the first group with keys, and a key
  // that does not sign it is a `false`, not a thrown SasTokenError (issue #13: a device of the
  // second group paid a parse and two errors with their stack traces for the first). Same answers
  // as verifying each key with verifySasToken (attestation.test.ts).
  let claims: SasTokenClaims | undefined;
  let mismatched = false;
  for (const group of enrollments.groups) {
    if (!group.keys) continue;
    // Derived before the token is read, as before: a group key that cannot derive throws first.
    const primary = groupDeviceKey(group.keys, 'primary', registrationId);
    if (claims === undefined) {
      try {
        claims = checkSasTokenClaims(input.token, {
          expectedResource,
          expectedKeyName: REGISTRATION_KEY_NAME,
          now: input.now,
        });
      } catch (err) {
        // Expiry, resource and format do not depend on the key: no group can do better.
        if (err instanceof SasTokenError) return fail(err.reason, err.message);
        // Not reached (the claims throw only SasTokenError); verify() counted anything else as a
        // signature mismatch, for this group and every other alike.
        mismatched = true;
        break;
      }
    }
    // The secondary key's device key only when the primary's does not sign the token (an HMAC
    // fewer for most devices).
    if (signedBy(claims, primary)) {
      return { ok: true, registrationId, enrollment: group, keyUsed: 'primary' };
    }
    if (signedBy(claims, groupDeviceKey(group.keys, 'secondary', registrationId))) {
      return { ok: true, registrationId, enrollment: group, keyUsed: 'secondary' };
    }
    mismatched = true;
  }
  const others = enrollments.unverifiable?.groups ?? [];
  const note = others.length
    ? `; groups whose devices the emulator cannot verify (TPM): ${others.map((g) => `"${g.id}" (${g.attestationType})`).join(', ')}`
    : '';
  if (mismatched) {
    return fail(
      'no-matching-enrollment',
      `no individual enrollment for "${registrationId}" and no enrollment group key signs the token${note}`,
    );
  }
  // No groups: the token may still be malformed or expired; say so rather than "no enrollment".
  const check = verify([]);
  if (!check.ok && check.error.reason !== 'signature-mismatch') return fail(check.error.reason, check.error.message);
  return fail('no-matching-enrollment', `no enrollment matches registration id "${registrationId}"${note}`);
}

/** `sasTokenSignedBy`, a key that is not base64 signing nothing (as `verify` above counts it). */
function signedBy(claims: SasTokenClaims, key: string): boolean {
  try {
    return sasTokenSignedBy(claims, key);
  } catch {
    return false;
  }
}
