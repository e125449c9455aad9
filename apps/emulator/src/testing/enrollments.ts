import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';
import type { EmulatedEnrollment, SymmetricKeys } from '../core/model.js';

/** Builds emulated enrollments for unit tests, with the record shape the config resolver makes. */
export function groupEnrollment(
  id: string,
  keys: SymmetricKeys,
  fields: Partial<EnrollmentGroup> = {},
): EmulatedEnrollment {
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
): EmulatedEnrollment {
  const record: IndividualEnrollment = {
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { ...keys } },
    capabilities: { iotEdge: false },
    provisioningStatus: 'enabled',
    ...fields,
  };
  return { kind: 'individual', id: registrationId, record, keys };
}
