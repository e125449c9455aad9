import {
  DpsErrorMessage,
  decodeBase64Key,
  enrollmentGroupSchema,
  individualEnrollmentSchema,
  KeyError,
  parseWith,
  registrationIdProblem,
} from '@dpskit/contracts';
import { initialTwinIntegerProblem, parseTwinSection, TwinError } from '../../hub/core/twin.js';
import { clip } from '../client-text.js';
import type { EnrollmentKind, EnrollmentRecord } from './store.js';
import { describeCertificate } from './x509.js';

export type Validation = { ok: true; draft: EnrollmentRecord } | { ok: false; message: string };

/** The fields the service computes; a client may send them back (the SDK echoes what it got) but never sets them. */
const SERVER_FIELDS = ['etag', 'createdDateTimeUtc', 'lastUpdatedDateTimeUtc', 'registrationState'] as const;

export function idFieldOf(kind: EnrollmentKind): 'enrollmentGroupId' | 'registrationId' {
  return kind === 'group' ? 'enrollmentGroupId' : 'registrationId';
}

/**
 * Checks an enrollment sent to the service API as DPS does (400004 with a message naming the field)
 * and returns it without the server-computed fields. Symmetric keys may be absent: the service
 * then keeps the enrollment's current keys or generates new ones. Linked hubs are compared
 * case-insensitively.
 */
export function validateEnrollment(
  kind: EnrollmentKind,
  urlId: string | undefined,
  body: unknown,
  linkedHubs: readonly string[],
  existing?: EnrollmentRecord,
): Validation {
  const fail = (message: string): Validation => ({ ok: false, message });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail(
      `The request body must be a JSON object (an ${kind === 'group' ? 'EnrollmentGroup' : 'IndividualEnrollment'}).`,
    );
  }
  const idField = idFieldOf(kind);
  const given = body as Record<string, unknown>;
  const withId = urlId !== undefined && given[idField] === undefined ? { ...given, [idField]: urlId } : given;
  const parsed =
    kind === 'group'
      ? parseWith(enrollmentGroupSchema, withId, 'enrollment group')
      : parseWith(individualEnrollmentSchema, withId, 'individual enrollment');
  if (!parsed.ok) return fail(parsed.error.message);
  const record = { ...parsed.value } as EnrollmentRecord & Record<string, unknown>;
  for (const field of SERVER_FIELDS) delete record[field];

  const id = record[idField] as string;
  if (urlId !== undefined && id.toLowerCase() !== urlId.toLowerCase()) {
    return fail(`The ${idField} "${clip(id)}" in the body does not match "${clip(urlId)}" in the request URL.`);
  }
  const idProblem = registrationIdProblem(id);
  if (idProblem) return fail(`Invalid ${idField}: ${idProblem.replace(/^registration id/, idField)}.`);
  if (kind === 'individual' && typeof record.deviceId === 'string' && record.deviceId.length > 128) {
    return fail('Invalid deviceId: at most 128 characters are allowed.');
  }

  const attestation = checkAttestation(kind, record.attestation, existing?.attestation);
  if (typeof attestation === 'string') return fail(attestation);
  record.attestation = attestation;

  const hubs = new Set(linkedHubs.map((hub) => hub.toLowerCase()));
  if (record.iotHubs !== undefined && record.iotHubs.length > 0 && record.allocationPolicy === undefined) {
    return fail(DpsErrorMessage.allocationPolicyRequiredWithIotHubs);
  }
  for (const hub of record.iotHubs ?? []) {
    if (!hubs.has(hub.toLowerCase())) {
      return fail(
        `Invalid iotHubs: "${clip(hub)}" is not an IoT hub linked to this provisioning service (${[...linkedHubs].join(', ')}).`,
      );
    }
  }
  if (record.iotHubHostName !== undefined && !hubs.has(record.iotHubHostName.toLowerCase())) {
    return fail(
      `Invalid iotHubHostName: "${clip(record.iotHubHostName)}" is not an IoT hub linked to this provisioning service.`,
    );
  }
  if (record.allocationPolicy === 'custom' && !record.customAllocationDefinition) {
    return fail(DpsErrorMessage.customAllocationDefinitionRequired);
  }
  const webhookUrl = record.customAllocationDefinition?.webhookUrl;
  if (webhookUrl !== undefined) {
    let protocol: string | undefined;
    try {
      protocol = new URL(webhookUrl).protocol;
    } catch {
      return fail(`Invalid customAllocationDefinition.webhookUrl: "${clip(webhookUrl)}" is not an absolute URL.`);
    }
    // DPS requires https; the emulator also calls http webhooks (local Functions hosts).
    if (protocol !== 'http:' && protocol !== 'https:') {
      return fail(
        `Invalid customAllocationDefinition.webhookUrl: must be an https (or, locally, http) URL, not ${protocol}.`,
      );
    }
  }
  if (record.initialTwin === null) delete record.initialTwin;
  const twinProblem = initialTwinProblem(record.initialTwin);
  if (twinProblem) return fail(`Invalid ${twinProblem}.`);
  return { ok: true, draft: record };
}

/**
 * Why the linked hub would refuse `initialTwin` (IoT Hub's twin rules, as the emulated hub applies
 * them when it creates the device's twin: keys, depth, 8 KB of tags, 32 KB of desired properties),
 * as `initialTwin.<field>: <cause>`, or undefined. An enrollment's twin is checked when it is
 * written, a webhook's when its answer is read: accepted, such a twin failed the registration
 * later, with 500001 Internal error. `text`: the JSON text whose root holds this `initialTwin` (a
 * webhook's answer), read for integers outside IoT Hub's range, which parsing has already rounded.
 */
export function initialTwinProblem(initialTwin: EnrollmentRecord['initialTwin'], text?: string): string | undefined {
  const sections = [
    ['tags', 'tags', initialTwin?.tags],
    ['properties.desired', 'desired', initialTwin?.properties?.desired],
  ] as const;
  for (const [field, section, value] of sections) {
    if (value === undefined || value === null) continue;
    try {
      // As a patch, like the registration's twin (initialTwinState): nulls are allowed.
      parseTwinSection(value, section, true);
    } catch (err) {
      if (err instanceof TwinError) return `initialTwin.${field}: ${err.message}`;
      throw err;
    }
  }
  const integer = text === undefined ? undefined : initialTwinIntegerProblem(text, 'initialTwin');
  return integer && `${integer.path}: ${integer.cause}`;
}

type Attestation = EnrollmentRecord['attestation'];

/**
 * Checks an attestation as the service does and returns it as stored (certificates with their
 * `info`), or the sentence saying what is wrong. The config file's enrollments go through it too.
 */
export function checkAttestation(
  kind: EnrollmentKind,
  attestation: Attestation,
  existing?: Attestation,
): Attestation | string {
  switch (attestation.type) {
    case 'symmetricKey': {
      const keys = attestation.symmetricKey ?? {};
      const checked: { primaryKey?: string; secondaryKey?: string } = {};
      for (const which of ['primaryKey', 'secondaryKey'] as const) {
        const key = keys[which];
        if (key === undefined || key === null || key === '') continue;
        try {
          const bytes = decodeBase64Key(key, which).length;
          if (bytes < 16 || bytes > 64) {
            return `Invalid attestation.symmetricKey.${which}: a key must be 16 to 64 bytes, not ${bytes}.`;
          }
        } catch (err) {
          return `Invalid attestation.symmetricKey.${which}: ${err instanceof KeyError ? err.message : String(err)}.`;
        }
        checked[which] = key;
      }
      return { type: 'symmetricKey', symmetricKey: checked };
    }
    case 'tpm': {
      if (kind === 'group') return 'Invalid attestation: enrollment groups do not support TPM attestation.';
      const tpm = attestation.tpm;
      if (!tpm?.endorsementKey) return 'Invalid attestation.tpm: endorsementKey is required.';
      if (!isBase64(tpm.endorsementKey)) return 'Invalid attestation.tpm.endorsementKey: must be base64.';
      return {
        type: 'tpm',
        tpm: {
          endorsementKey: tpm.endorsementKey,
          ...(tpm.storageRootKey ? { storageRootKey: tpm.storageRootKey } : {}),
        },
      };
    }
    case 'x509':
      return checkX509(kind, attestation.x509, existing?.type === 'x509' ? existing.x509 : undefined);
    default:
      return `Invalid attestation.type "${clip(String(attestation.type))}": use symmetricKey, x509 or tpm.`;
  }
}

type CertificateEntry = { certificate?: unknown; info?: unknown };

/**
 * Certificates are stored with their `info`; answers carry only the `info` (as the service's do).
 * A client that sends such an answer back (GET, change a field, PUT) sends `info` without the
 * certificate: the stored certificate with the same thumbprint is kept.
 */
function checkX509(
  kind: EnrollmentKind,
  x509: Record<string, unknown> | undefined,
  existing: Record<string, unknown> | undefined,
): Attestation | string {
  if (!x509) return 'Invalid attestation.x509: the x509 attestation is missing.';
  const out: Record<string, unknown> = {};
  const sets = kind === 'group' ? ['signingCertificates'] : ['clientCertificates', 'signingCertificates'];
  for (const [name, value] of Object.entries(x509)) {
    if (value === null || value === undefined) continue;
    if (name === 'caReferences') {
      out.caReferences = value;
      continue;
    }
    if (!sets.includes(name)) {
      return `Invalid attestation.x509.${name}: ${kind === 'group' ? 'enrollment groups take signingCertificates or caReferences' : 'individual enrollments take clientCertificates, signingCertificates or caReferences'}.`;
    }
    const certificates: Record<string, unknown> = {};
    for (const slot of ['primary', 'secondary'] as const) {
      const entry = (value as Record<string, CertificateEntry | null | undefined>)[slot];
      if (entry === null || entry === undefined) continue;
      if (typeof entry.certificate !== 'string' || entry.certificate === '') {
        const stored = (existing?.[name] as Record<string, CertificateEntry> | undefined)?.[slot];
        const thumbprint = (entry.info as { sha256Thumbprint?: unknown } | undefined)?.sha256Thumbprint;
        if (stored && thumbprint && (stored.info as { sha256Thumbprint?: unknown }).sha256Thumbprint === thumbprint) {
          certificates[slot] = stored;
          continue;
        }
        return `Invalid attestation.x509.${name}.${slot}: certificate is required.`;
      }
      const described = describeCertificate(entry.certificate);
      if (!described.ok) return `Invalid attestation.x509.${name}.${slot}.certificate: it ${described.problem}.`;
      certificates[slot] = { certificate: entry.certificate, info: described.info };
    }
    if (!certificates.primary) return `Invalid attestation.x509.${name}: a primary certificate is required.`;
    out[name] = certificates;
  }
  const primaryCa = (out.caReferences as { primary?: unknown } | undefined)?.primary;
  const hasCertificates = sets.some((name) => out[name] !== undefined);
  if (!hasCertificates && typeof primaryCa !== 'string') {
    return `Invalid attestation.x509: give ${kind === 'group' ? 'signingCertificates' : 'clientCertificates'} with a primary certificate, or caReferences.primary.`;
  }
  return { type: 'x509', x509: out };
}

function isBase64(value: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(value.replace(/\s+/g, '')) && value.length > 0;
}
