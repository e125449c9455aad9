import type { DeviceRegistrationResult, EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';
import type { EmulatedEnrollment, UnverifiableEnrollment, X509Trust, X509TrustedCertificate } from '../model.js';
import type { EnrollmentKind, EnrollmentRecord, StoredEnrollment } from './store.js';
import { idFieldOf } from './validate.js';

/** The server-computed part of a record. */
export interface RecordMeta {
  etag: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
}

/** An enrollment's fields after its id, in the order the service serializes them. */
export const ENROLLMENT_RECORD_FIELDS = [
  'attestation',
  'capabilities',
  'iotHubHostName',
  'initialTwin',
  'etag',
  'provisioningStatus',
  'reprovisionPolicy',
  'createdDateTimeUtc',
  'lastUpdatedDateTimeUtc',
  'allocationPolicy',
  'iotHubs',
  'customAllocationDefinition',
  'optionalDeviceInformation',
] as const;

/**
 * The record as the service stores and serializes it: defaults filled in (`capabilities`,
 * `provisioningStatus`, `reprovisionPolicy`), fields in the service's order, unknown fields kept
 * at the end (DPS adds fields over time).
 */
export function buildRecord(kind: EnrollmentKind, draft: EnrollmentRecord, meta: RecordMeta): EnrollmentRecord {
  const source: Record<string, unknown> = {
    capabilities: { iotEdge: false },
    provisioningStatus: 'enabled',
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    ...draft,
    ...meta,
  };
  const idField = idFieldOf(kind);
  const out: Record<string, unknown> = { [idField]: source[idField] };
  if (kind === 'individual' && source.deviceId !== undefined) out.deviceId = source.deviceId;
  for (const field of ENROLLMENT_RECORD_FIELDS) if (source[field] !== undefined) out[field] = source[field];
  for (const [field, value] of Object.entries(source)) if (!(field in out) && value !== undefined) out[field] = value;
  return out as EnrollmentRecord;
}

/**
 * An enrollment as the service API answers it. Symmetric keys only with `secrets` (the PUT answer
 * and `attestationmechanism`); GET and query leave them out, as the service does (the Azure CLI
 * calls `attestationmechanism` for `--show-keys`). X.509 certificates are reported by their `info`.
 */
export function serviceView(
  record: EnrollmentRecord,
  options: { secrets: boolean; registrationState?: Record<string, unknown> },
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    ...record,
    attestation: attestationView(record.attestation, options.secrets),
  };
  if (options.registrationState) {
    // `registrationState` follows `deviceId` in the service's individual enrollments.
    const { registrationId, deviceId, ...rest } = view;
    return {
      registrationId,
      ...(deviceId !== undefined ? { deviceId } : {}),
      registrationState: options.registrationState,
      ...rest,
    };
  }
  return view;
}

export function attestationView(
  attestation: EnrollmentRecord['attestation'],
  secrets: boolean,
): Record<string, unknown> {
  if (attestation.type === 'symmetricKey') {
    return secrets ? { type: 'symmetricKey', symmetricKey: { ...attestation.symmetricKey } } : { type: 'symmetricKey' };
  }
  if (attestation.type === 'x509' && attestation.x509) {
    const x509: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(attestation.x509)) {
      if (name === 'caReferences' || typeof value !== 'object' || value === null) {
        x509[name] = value;
        continue;
      }
      const certificates: Record<string, unknown> = {};
      for (const [slot, entry] of Object.entries(value as Record<string, { info?: unknown }>)) {
        certificates[slot] = { info: entry.info };
      }
      x509[name] = certificates;
    }
    return { type: 'x509', x509 };
  }
  return structuredClone(attestation) as Record<string, unknown>;
}

/**
 * A registration record as the service API reports it (`DeviceRegistrationState`): the record
 * the device API wrote, without the attestation-specific fields the device's answer carries.
 */
export function registrationStateView(result: DeviceRegistrationResult): Record<string, unknown> {
  const {
    symmetricKey: _s,
    x509: _x,
    tpm: _t,
    ...state
  } = result as DeviceRegistrationResult & Record<string, unknown>;
  return state;
}

/**
 * What the registration core works with: symmetric-key enrollments with their keys, X.509
 * enrollments with the certificates they trust (CA references resolved through `caCertificates`,
 * the instance's certificates by lower-cased name), or what it cannot attest.
 */
export function toEmulated(
  stored: StoredEnrollment,
  caCertificates: ReadonlyMap<string, string> = new Map(),
): EmulatedEnrollment | UnverifiableEnrollment {
  const { attestation } = stored.record;
  if (attestation.type === 'x509' && attestation.x509) {
    const x509 = x509Trust(attestation.x509, caCertificates);
    return stored.kind === 'group'
      ? { kind: 'group', id: stored.id, record: stored.record as EnrollmentGroup, x509 }
      : { kind: 'individual', id: stored.id, record: stored.record as IndividualEnrollment, x509 };
  }
  const primaryKey = attestation.symmetricKey?.primaryKey;
  const secondaryKey = attestation.symmetricKey?.secondaryKey;
  if (attestation.type !== 'symmetricKey' || !primaryKey || !secondaryKey) {
    return { kind: stored.kind, id: stored.id, attestationType: attestation.type };
  }
  const keys = { primaryKey, secondaryKey };
  return stored.kind === 'group'
    ? { kind: 'group', id: stored.id, record: stored.record as EnrollmentGroup, keys }
    : { kind: 'individual', id: stored.id, record: stored.record as IndividualEnrollment, keys };
}

function x509Trust(
  x509: NonNullable<EnrollmentRecord['attestation']['x509']>,
  caCertificates: ReadonlyMap<string, string>,
): X509Trust {
  const certificates: X509TrustedCertificate[] = [];
  for (const source of ['clientCertificates', 'signingCertificates'] as const) {
    for (const slot of ['primary', 'secondary'] as const) {
      const certificate = x509[source]?.[slot]?.certificate;
      if (certificate) certificates.push({ source, slot, certificate });
    }
  }
  for (const slot of ['primary', 'secondary'] as const) {
    const reference = x509.caReferences?.[slot];
    if (!reference) continue;
    const certificate = caCertificates.get(reference.toLowerCase());
    certificates.push({ source: 'caReferences', slot, reference, ...(certificate ? { certificate } : {}) });
  }
  return { certificates };
}
