import type { EnrollmentGroup, IndividualEnrollment, X509Attestation } from '@dpskit/contracts';
import { checkAttestation } from '../core/enrollments/validate.js';
import { toEmulated } from '../core/enrollments/views.js';
import type { EmulatedEnrollment, SymmetricKeys } from '../core/model.js';

/** A symmetric-key enrollment: its keys are known to be there. */
export type KeyedEnrollment = EmulatedEnrollment & { keys: SymmetricKeys };

/** Builds emulated enrollments for unit tests, with the record shape the config resolver makes. */
export function groupEnrollment(
  id: string,
  keys: SymmetricKeys,
  fields: Partial<EnrollmentGroup> = {},
): KeyedEnrollment {
  const record: EnrollmentGroup = {
    enrollmentGroupId: id,
    attestation: { type: 'symmetricKey', symmetricKey: { ...keys } },
    capabilities: { iotEdge: false },
    provisioningStatus: 'enabled',
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    ...fields,
  };
  return { kind: 'group', id, record, keys };
}

export function individualEnrollment(
  registrationId: string,
  keys: SymmetricKeys,
  fields: Partial<IndividualEnrollment> = {},
): KeyedEnrollment {
  const record: IndividualEnrollment = {
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { ...keys } },
    capabilities: { iotEdge: false },
    provisioningStatus: 'enabled',
    ...fields,
  };
  return { kind: 'individual', id: registrationId, record, keys };
}

/**
 * An X.509 enrollment as the service stores it, built through the service's own validation:
 * `certificates` are PEM, by set (`clientCertificates`, `signingCertificates`) and slot.
 */
export function x509Enrollment(
  kind: 'group' | 'individual',
  id: string,
  x509: X509Attestation,
  fields: Partial<EnrollmentGroup> = {},
  caCertificates: ReadonlyMap<string, string> = new Map(),
): EmulatedEnrollment {
  const attestation = checkAttestation(kind, { type: 'x509', x509 });
  if (typeof attestation === 'string') throw new Error(attestation);
  const record = {
    [kind === 'group' ? 'enrollmentGroupId' : 'registrationId']: id,
    attestation,
    capabilities: { iotEdge: false },
    provisioningStatus: 'enabled',
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    ...fields,
  } as EnrollmentGroup & IndividualEnrollment;
  const emulated = toEmulated({ kind, id, record }, caCertificates);
  if (!('record' in emulated)) throw new Error(`${id} is not an X.509 enrollment`);
  return emulated;
}
