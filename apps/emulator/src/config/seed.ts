import { createCosmosEtag, formatDpsTimestamp } from '@dpskit/contracts';
import { certificateUses, findCertificateConflict } from '../core/enrollments/certificate-conflicts.js';
import type { EnrollmentStore, StoredEnrollment } from '../core/enrollments/store.js';
import type { EnrollmentSet } from '../core/model.js';
import { ConfigError } from './load.js';
import type { EnrollmentMetaStore } from './resolve.js';

export type SeedAction = 'created' | 'kept' | 'replaced' | 'removed';

export interface SeedReport {
  kind: 'group' | 'individual';
  id: string;
  action: SeedAction;
}

/**
 * Seeds the store with the config file's enrollments, declaratively. The file owns the
 * enrollments it declares; the service API owns the rest:
 *
 * - declared, not in the store → `created`;
 * - declared, unchanged in the file since it was last seeded → `kept` as the store has it, so
 *   changes made through the service API survive a restart;
 * - declared and changed in the file since it was last seeded (or created through the API under
 *   the same id) → `replaced` by the file's version (new etag, created time kept);
 * - seeded from the file earlier but no longer declared → `removed`;
 * - created through the service API and not declared → never touched.
 *
 * An enrollment seeded from the file and then deleted through the API comes back on the next
 * start, because the file still declares it. A declared enrollment whose certificate an enrollment
 * of the service API's already uses (one certificate, one enrollment) fails the start with a
 * `ConfigError` naming both, before anything is written: neither is dropped silently.
 */
export function seedEnrollments(
  declared: EnrollmentSet,
  meta: EnrollmentMetaStore,
  store: EnrollmentStore,
  now = new Date(),
  caCertificates: ReadonlyMap<string, string> = new Map(),
): SeedReport[] {
  return store.transaction(() => {
    const report: SeedReport[] = [];
    const declaredKeys = new Set<string>();
    const all = [...declared.groups, ...declared.individuals.values()];
    const declaredIds = new Set(all.map((e) => `${e.kind}:${e.id.toLowerCase()}`));
    for (const kind of ['group', 'individual'] as const) {
      const fromApi = store
        .listEnrollments(kind)
        .items.filter((s) => s.seedHash === undefined && !declaredIds.has(`${kind}:${s.id.toLowerCase()}`))
        .flatMap((s) => certificateUses(kind, s.id, s.record.attestation, caCertificates));
      if (fromApi.length === 0) continue;
      for (const enrollment of all) {
        if (enrollment.kind !== kind) continue;
        const uses = certificateUses(kind, enrollment.id, enrollment.record.attestation, caCertificates);
        const conflict = findCertificateConflict(uses, fromApi);
        if (!conflict) continue;
        const what = kind === 'group' ? 'enrollment group' : 'individual enrollment';
        throw new ConfigError('the config file and the state folder', [
          {
            path: `${kind === 'group' ? 'enrollmentGroups' : 'individualEnrollments'} "${enrollment.id}" attestation.x509.${conflict.use.field}`,
            message: `the certificate (SHA-256 ${conflict.use.sha256Thumbprint}) is already the ${conflict.other.field} of ${what} "${conflict.other.id}", created through the service API and kept in the state folder; a certificate may identify the devices of one ${what} only. Delete that one (dps-emulator enrollments delete ${conflict.other.id} --kind ${kind} --state-dir <dir>) or change the file`,
          },
        ]);
      }
    }
    for (const enrollment of all) {
      const { kind, id } = enrollment;
      declaredKeys.add(`${kind}:${id.toLowerCase()}`);
      const seedHash = meta.getEnrollmentMeta(kind, id)?.contentHash;
      if (seedHash === undefined) throw new Error(`enrollment "${id}" was not resolved before seeding`);
      const existing = store.getEnrollment(kind, id);
      if (!existing) {
        store.putEnrollment({ kind, id, record: structuredClone(enrollment.record), seedHash });
        report.push({ kind, id, action: 'created' });
      } else if (existing.seedHash === seedHash) {
        report.push({ kind, id, action: 'kept' });
      } else {
        const timestamp = formatDpsTimestamp(now);
        const record = {
          ...structuredClone(enrollment.record),
          etag: createCosmosEtag(now),
          createdDateTimeUtc: existing.record.createdDateTimeUtc ?? timestamp,
          lastUpdatedDateTimeUtc: timestamp,
        } as StoredEnrollment['record'];
        store.putEnrollment({ kind, id: existing.id, record, seedHash });
        report.push({ kind, id, action: 'replaced' });
      }
    }
    for (const kind of ['group', 'individual'] as const) {
      for (const stored of store.listEnrollments(kind).items) {
        if (stored.seedHash === undefined || declaredKeys.has(`${kind}:${stored.id.toLowerCase()}`)) continue;
        store.deleteEnrollment(kind, stored.id);
        report.push({ kind, id: stored.id, action: 'removed' });
      }
    }
    return report;
  });
}
