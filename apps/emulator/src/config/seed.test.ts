import { describe, expect, it } from 'vitest';
import { EnrollmentService } from '../core/enrollments/service.js';
import { MemoryEnrollmentStore, type RegistrationAdminStore } from '../core/enrollments/store.js';
import { createTestCa } from '../testing/certificates.js';
import { ConfigError, parseConfig } from './load.js';
import { MemoryEnrollmentMetaStore, resolveConfig } from './resolve.js';
import type { EmulatorConfigInput } from './schema.js';
import { seedEnrollments } from './seed.js';

const HUB = 'hub-a.azure-devices.net';
const noRegistrations: RegistrationAdminStore = {
  get: () => undefined,
  delete: () => false,
  listByGroup: () => ({ items: [] }),
};

/** One "start": resolve the file against the remembered meta, seed the store. */
function start(input: EmulatorConfigInput, meta: MemoryEnrollmentMetaStore, store: MemoryEnrollmentStore) {
  const resolved = resolveConfig(parseConfig(input), meta);
  return seedEnrollments(resolved.model.enrollments, meta, store).map((r) => `${r.id}:${r.action}`);
}

const file = (groups: Record<string, unknown>[]): EmulatorConfigInput => ({
  iotHubs: [{ hostName: HUB }],
  enrollmentGroups: groups as EmulatorConfigInput['enrollmentGroups'],
});

describe('seedEnrollments: the config file and the store', () => {
  it('creates, keeps API changes while the file is unchanged, replaces when the file changes, removes what the file dropped', () => {
    const meta = new MemoryEnrollmentMetaStore();
    const store = new MemoryEnrollmentStore();
    const api = new EnrollmentService({ store, registrations: noRegistrations, linkedHubs: [HUB] });
    const seeded = { enrollmentGroupId: 'from-file', allocationPolicy: 'hashed' };
    const other = { enrollmentGroupId: 'also-from-file' };

    expect(start(file([seeded, other]), meta, store)).toEqual(['from-file:created', 'also-from-file:created']);
    const keys = store.getEnrollment('group', 'from-file')?.record.attestation.symmetricKey;
    api.put('group', 'api-only', { enrollmentGroupId: 'api-only', attestation: { type: 'symmetricKey' } });

    // A change through the API survives a restart with the same file.
    const current = api.get('group', 'from-file');
    if (!current.ok) throw new Error(current.message);
    api.put('group', 'from-file', { ...current.value, provisioningStatus: 'disabled' });
    expect(start(file([seeded, other]), meta, store)).toEqual(['from-file:kept', 'also-from-file:kept']);
    expect(store.getEnrollment('group', 'from-file')?.record.provisioningStatus).toBe('disabled');
    // Generated keys stay the same across starts.
    expect(store.getEnrollment('group', 'from-file')?.record.attestation.symmetricKey).toEqual(keys);

    // The file changed: the file wins for that enrollment, keeping its creation time.
    const created = store.getEnrollment('group', 'from-file')?.record.createdDateTimeUtc;
    expect(start(file([{ ...seeded, allocationPolicy: 'static', iotHubs: [HUB] }, other]), meta, store)).toEqual([
      'from-file:replaced',
      'also-from-file:kept',
    ]);
    const replaced = store.getEnrollment('group', 'from-file')?.record;
    expect(replaced).toMatchObject({
      allocationPolicy: 'static',
      provisioningStatus: 'enabled',
      createdDateTimeUtc: created,
    });

    // Dropped from the file: removed. Created through the API: never touched.
    expect(start(file([{ ...seeded, allocationPolicy: 'static', iotHubs: [HUB] }]), meta, store)).toEqual([
      'from-file:kept',
      'also-from-file:removed',
    ]);
    expect(store.getEnrollment('group', 'also-from-file')).toBeUndefined();
    expect(store.getEnrollment('group', 'api-only')).toBeDefined();
  });

  it('an enrollment deleted through the API comes back while the file declares it; the file replaces one the API created under the same id', () => {
    const meta = new MemoryEnrollmentMetaStore();
    const store = new MemoryEnrollmentStore();
    const api = new EnrollmentService({ store, registrations: noRegistrations, linkedHubs: [HUB] });
    start(file([{ enrollmentGroupId: 'g' }]), meta, store);
    api.delete('group', 'g');
    expect(start(file([{ enrollmentGroupId: 'g' }]), meta, store)).toEqual(['g:created']);

    api.put('group', 'h', {
      enrollmentGroupId: 'h',
      attestation: { type: 'symmetricKey' },
      provisioningStatus: 'disabled',
    });
    expect(start(file([{ enrollmentGroupId: 'g' }, { enrollmentGroupId: 'h' }]), meta, store)).toEqual([
      'g:kept',
      'h:replaced',
    ]);
    expect(store.getEnrollment('group', 'h')?.record.provisioningStatus).toBe('enabled');
  });

  it('fails the start, naming both, when a declared enrollment has a certificate an API enrollment already uses', async () => {
    const line = await createTestCa('Seed conflict line');
    const meta = new MemoryEnrollmentMetaStore();
    const store = new MemoryEnrollmentStore();
    const api = new EnrollmentService({ store, registrations: noRegistrations, linkedHubs: [HUB] });
    const x509 = { type: 'x509', x509: { signingCertificates: { primary: { certificate: line.cert } } } };
    expect(api.put('group', 'api-line', { enrollmentGroupId: 'api-line', attestation: x509 }).ok).toBe(true);

    let error: unknown;
    try {
      start(file([{ enrollmentGroupId: 'file-line', attestation: x509 }]), meta, store);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'enrollmentGroups "file-line" attestation.x509.signingCertificates.primary',
        message: expect.stringContaining(
          'is already the signingCertificates.primary of enrollment group "api-line", created through the service API',
        ),
      },
    ]);
    // Nothing was written, nothing dropped.
    expect(store.getEnrollment('group', 'file-line')).toBeUndefined();
    expect(store.getEnrollment('group', 'api-line')).toBeDefined();
    // The same certificate under the API enrollment's own id is the file taking it over: no conflict.
    expect(start(file([{ enrollmentGroupId: 'api-line', attestation: x509 }]), meta, store)).toEqual([
      'api-line:replaced',
    ]);
  });
});
