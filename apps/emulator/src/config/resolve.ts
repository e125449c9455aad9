import { createHash } from 'node:crypto';
import {
  createCosmosEtag,
  DEFAULT_REPROVISION_POLICY,
  type EnrollmentGroup,
  formatDpsTimestamp,
  generateSymmetricKey,
  type IndividualEnrollment,
} from '@dpskit/contracts';
import { checkAttestation } from '../core/enrollments/validate.js';
import { ENROLLMENT_RECORD_FIELDS, toEmulated } from '../core/enrollments/views.js';
import {
  type EmulatedEnrollment,
  type EnrollmentCredentials,
  enrollmentSet,
  type ServiceModel,
  type SymmetricKeys,
} from '../core/model.js';
import type { EmulatorConfig, EnrollmentGroupConfig, IndividualEnrollmentConfig } from './schema.js';

/** What the service remembers about an enrollment between starts. */
export interface EnrollmentMeta {
  /** Keys the emulator generated because the config gave none; reused on every start. */
  generatedKeys: Partial<SymmetricKeys>;
  contentHash: string;
  etag: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
}

export interface EnrollmentMetaStore {
  getEnrollmentMeta(kind: 'group' | 'individual', id: string): EnrollmentMeta | undefined;
  putEnrollmentMeta(kind: 'group' | 'individual', id: string, meta: EnrollmentMeta): void;
}

export interface ResolvedConfig {
  model: ServiceModel;
  /** Enrollments with at least one generated key (the CLI prints them). */
  generated: { kind: 'group' | 'individual'; id: string; keys: ('primaryKey' | 'secondaryKey')[] }[];
}

/**
 * Turns the validated config into the service's enrollment records, as DPS would store them:
 * missing keys generated (once, then remembered in the state folder), `provisioningStatus`,
 * `capabilities` and `reprovisionPolicy` defaulted, and an etag and timestamps that change only
 * when the enrollment's content changes.
 */
export function resolveConfig(config: EmulatorConfig, meta: EnrollmentMetaStore, now = new Date()): ResolvedConfig {
  const caCertificates = caCertificatesOf(config);
  const generated: ResolvedConfig['generated'] = [];
  const enrollments: EmulatedEnrollment[] = [];

  const prepare = (
    kind: 'group' | 'individual',
    id: string,
    entry: EnrollmentGroupConfig | IndividualEnrollmentConfig,
  ) => {
    const stored = meta.getEnrollmentMeta(kind, id);
    const given = entry.attestation?.symmetricKey ?? {};
    const generatedKeys: Partial<SymmetricKeys> = {};
    const keys = {} as SymmetricKeys;
    const created: ('primaryKey' | 'secondaryKey')[] = [];
    // X.509 enrollments have no keys to generate.
    for (const which of entry.attestation?.type === 'x509' ? [] : (['primaryKey', 'secondaryKey'] as const)) {
      const key = given[which] ?? stored?.generatedKeys[which] ?? generateSymmetricKey();
      if (given[which] === undefined) {
        generatedKeys[which] = key;
        created.push(which);
      }
      keys[which] = key;
    }
    if (created.length > 0) generated.push({ kind, id, keys: created });

    const contentHash = createHash('sha256').update(JSON.stringify({ entry, keys })).digest('hex');
    const timestamp = formatDpsTimestamp(now);
    const next: EnrollmentMeta =
      stored && stored.contentHash === contentHash
        ? { ...stored, generatedKeys }
        : {
            generatedKeys,
            contentHash,
            etag: createCosmosEtag(now, { seed: contentHash }),
            createdDateTimeUtc: stored?.createdDateTimeUtc ?? timestamp,
            lastUpdatedDateTimeUtc: timestamp,
          };
    meta.putEnrollmentMeta(kind, id, next);
    return { keys, next };
  };

  // Field order as the service serializes enrollments (and so as webhook bodies show them).
  const common = (
    kind: 'group' | 'individual',
    entry: EnrollmentGroupConfig | IndividualEnrollmentConfig,
    keys: SymmetricKeys,
    m: EnrollmentMeta,
  ) => {
    const {
      attestation,
      capabilities,
      iotHubHostName,
      initialTwin,
      etag: _etag,
      provisioningStatus,
      reprovisionPolicy,
    } = entry;
    const {
      createdDateTimeUtc: _c,
      lastUpdatedDateTimeUtc: _l,
      allocationPolicy,
      iotHubs,
      customAllocationDefinition,
    } = entry;
    return {
      attestation: x509Attestation(kind, attestation) ?? {
        ...attestation,
        type: 'symmetricKey' as const,
        symmetricKey: { primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey },
      },
      capabilities: capabilities ?? { iotEdge: false },
      ...(iotHubHostName !== undefined ? { iotHubHostName } : {}),
      ...(initialTwin ? { initialTwin } : {}),
      etag: m.etag,
      provisioningStatus: provisioningStatus ?? 'enabled',
      reprovisionPolicy: reprovisionPolicy ?? { ...DEFAULT_REPROVISION_POLICY },
      createdDateTimeUtc: m.createdDateTimeUtc,
      lastUpdatedDateTimeUtc: m.lastUpdatedDateTimeUtc,
      ...(allocationPolicy !== undefined ? { allocationPolicy } : {}),
      ...(iotHubs !== undefined ? { iotHubs } : {}),
      ...(customAllocationDefinition !== undefined ? { customAllocationDefinition } : {}),
    };
  };
  const knownKeys = new Set<string>([
    'enrollmentGroupId',
    'registrationId',
    'deviceId',
    'registrationState',
    ...ENROLLMENT_RECORD_FIELDS,
  ]);
  const extra = (entry: object) => Object.fromEntries(Object.entries(entry).filter(([key]) => !knownKeys.has(key)));

  const credentials = (record: EnrollmentGroup | IndividualEnrollment, keys: SymmetricKeys): EnrollmentCredentials => {
    if (record.attestation.type !== 'x509') return { keys };
    const emulated = toEmulated({ kind: 'group', id: '', record }, caCertificates);
    return 'x509' in emulated && emulated.x509 ? { x509: emulated.x509 } : { x509: { certificates: [] } };
  };

  for (const entry of config.enrollmentGroups) {
    const { keys, next } = prepare('group', entry.enrollmentGroupId, entry);
    const record: EnrollmentGroup = {
      enrollmentGroupId: entry.enrollmentGroupId,
      ...common('group', entry, keys, next),
      ...extra(entry),
    };
    enrollments.push({ kind: 'group', id: entry.enrollmentGroupId, record, ...credentials(record, keys) });
  }
  for (const entry of config.individualEnrollments) {
    const { keys, next } = prepare('individual', entry.registrationId, entry);
    const record: IndividualEnrollment = {
      registrationId: entry.registrationId,
      ...(entry.deviceId !== undefined ? { deviceId: entry.deviceId } : {}),
      ...common('individual', entry, keys, next),
      ...(entry.optionalDeviceInformation !== undefined
        ? { optionalDeviceInformation: entry.optionalDeviceInformation }
        : {}),
      ...extra(entry),
    };
    enrollments.push({ kind: 'individual', id: entry.registrationId, record, ...credentials(record, keys) });
  }

  return {
    model: {
      idScope: config.idScope,
      defaultAllocationPolicy: config.defaultAllocationPolicy,
      linkedHubs: config.iotHubs.map((hub) => ({
        hostName: hub.hostName,
        allocationWeight: hub.allocationWeight,
        applyAllocationPolicy: hub.applyAllocationPolicy,
        ...(hub.latencyMs !== undefined ? { latencyMs: hub.latencyMs } : {}),
        ...(hub.consumerGroups?.length ? { consumerGroups: hub.consumerGroups } : {}),
      })),
      enrollments: enrollmentSet(enrollments),
    },
    generated,
  };
}

/** A meta store that forgets everything (keys are regenerated on every start). */
export class MemoryEnrollmentMetaStore implements EnrollmentMetaStore {
  readonly #entries = new Map<string, EnrollmentMeta>();
  getEnrollmentMeta(kind: 'group' | 'individual', id: string): EnrollmentMeta | undefined {
    return this.#entries.get(`${kind}:${id.toLowerCase()}`);
  }
  putEnrollmentMeta(kind: 'group' | 'individual', id: string, meta: EnrollmentMeta): void {
    this.#entries.set(`${kind}:${id.toLowerCase()}`, meta);
  }
}

/** The config's CA certificates by lower-cased name (what `caReferences` name). */
export function caCertificatesOf(config: Pick<EmulatorConfig, 'certificates'>): Map<string, string> {
  return new Map(config.certificates.map((entry) => [entry.name.toLowerCase(), entry.certificate]));
}

/** An X.509 attestation as the service stores it (certificates with their `info`); undefined for others. */
function x509Attestation(
  kind: 'group' | 'individual',
  attestation: EnrollmentGroupConfig['attestation'],
): EnrollmentGroup['attestation'] | undefined {
  if (attestation?.type !== 'x509') return undefined;
  const checked = checkAttestation(kind, attestation);
  // The schema ran the same check: a problem here is a bug.
  if (typeof checked === 'string') throw new Error(checked);
  return checked;
}
