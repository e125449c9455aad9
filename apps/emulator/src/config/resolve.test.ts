import { COSMOS_ETAG_PATTERN } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './load.js';
import { MemoryEnrollmentMetaStore, resolveConfig } from './resolve.js';

const base = {
  iotHubs: [
    { hostName: 'a.net', allocationWeight: 2, latencyMs: 5 },
    { hostName: 'b.net', applyAllocationPolicy: false },
  ],
};

describe('resolveConfig', () => {
  it('fills DPS defaults in the service field order and keeps unknown enrollment fields', () => {
    const config = parseConfig({
      ...base,
      individualEnrollments: [
        {
          registrationId: 'dev-1',
          deviceId: 'hub-id',
          allocationPolicy: 'static',
          iotHubs: ['a.net'],
          optionalDeviceInformation: { building: 7 },
          credentialPolicyName: 'future-field',
        },
      ],
    });
    const { model, generated } = resolveConfig(
      config,
      new MemoryEnrollmentMetaStore(),
      new Date('2026-01-02T03:04:05.678Z'),
    );
    const record = model.enrollments.individuals.get('dev-1')?.record;
    expect(Object.keys(record ?? {})).toEqual([
      'registrationId',
      'deviceId',
      'attestation',
      'capabilities',
      'etag',
      'provisioningStatus',
      'reprovisionPolicy',
      'createdDateTimeUtc',
      'lastUpdatedDateTimeUtc',
      'allocationPolicy',
      'iotHubs',
      'optionalDeviceInformation',
      'credentialPolicyName',
    ]);
    expect(record).toMatchObject({
      capabilities: { iotEdge: false },
      provisioningStatus: 'enabled',
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
      createdDateTimeUtc: '2026-01-02T03:04:05.678Z',
      etag: expect.stringMatching(COSMOS_ETAG_PATTERN),
    });
    expect(generated).toEqual([{ kind: 'individual', id: 'dev-1', keys: ['primaryKey', 'secondaryKey'] }]);
    expect(model.linkedHubs).toEqual([
      { hostName: 'a.net', allocationWeight: 2, applyAllocationPolicy: true, latencyMs: 5 },
      { hostName: 'b.net', allocationWeight: 1, applyAllocationPolicy: false },
    ]);
  });

  it('reuses generated keys, etag and timestamps until the enrollment changes', () => {
    const meta = new MemoryEnrollmentMetaStore();
    const group = { enrollmentGroupId: 'g', allocationPolicy: 'hashed' as const };
    const first = resolveConfig(
      parseConfig({ ...base, enrollmentGroups: [group] }),
      meta,
      new Date('2026-01-01T00:00:00Z'),
    );
    const again = resolveConfig(
      parseConfig({ ...base, enrollmentGroups: [group] }),
      meta,
      new Date('2026-02-01T00:00:00Z'),
    );
    const [g1] = first.model.enrollments.groups;
    const [g2] = again.model.enrollments.groups;
    expect(g2?.keys).toEqual(g1?.keys);
    expect(g2?.record.etag).toBe(g1?.record.etag);
    expect(g2?.record.lastUpdatedDateTimeUtc).toBe('2026-01-01T00:00:00Z');

    const changed = resolveConfig(
      parseConfig({ ...base, enrollmentGroups: [{ ...group, provisioningStatus: 'disabled' }] }),
      meta,
      new Date('2026-03-01T00:00:00Z'),
    );
    const [g3] = changed.model.enrollments.groups;
    expect(g3?.keys).toEqual(g1?.keys);
    expect(g3?.record.etag).not.toBe(g1?.record.etag);
    expect(g3?.record).toMatchObject({
      createdDateTimeUtc: '2026-01-01T00:00:00Z',
      lastUpdatedDateTimeUtc: '2026-03-01T00:00:00Z',
    });
  });

  it('keeps keys given in the config and generates only the missing one', () => {
    const primaryKey = Buffer.alloc(32, 1).toString('base64');
    const { model, generated } = resolveConfig(
      parseConfig({
        ...base,
        enrollmentGroups: [
          { enrollmentGroupId: 'g', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey } } },
        ],
      }),
      new MemoryEnrollmentMetaStore(),
    );
    expect(model.enrollments.groups[0]?.keys?.primaryKey).toBe(primaryKey);
    expect(model.enrollments.groups[0]?.record.attestation.symmetricKey?.secondaryKey).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(generated).toEqual([{ kind: 'group', id: 'g', keys: ['secondaryKey'] }]);
  });
});
