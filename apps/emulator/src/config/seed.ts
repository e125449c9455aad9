import { createCosmosEtag, formatDpsTimestamp } from '@dpskit/contracts';
import type { EnrollmentStore, StoredEnrollment } from '../core/enrollments/store.js';
import type { EnrollmentSet } from '../core/model.js';
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
 * start, because the file still declares it.
 */
export function seedEnrollments(
  declared: EnrollmentSet,
  meta: EnrollmentMetaStore,
  store: EnrollmentStore,
  now = new Date(),
): SeedReport[] {
  return store.transaction(() => {
    const report: SeedReport[] = [];
    const declaredKeys = new Set<string>();
    const all = [...declared.groups, ...declared.individuals.values()];
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
