import { describe, expect, it } from 'vitest';
import { createTestCa } from '../../testing/certificates.js';
import type { RegistrationRecord } from '../store.js';
import { type EnrollmentQuotas, EnrollmentService, etagMatches, unsupportedQueryPart } from './service.js';
import { MemoryEnrollmentStore, pageOf, type RegistrationAdminStore } from './store.js';

const HUB = 'hub-a.azure-devices.net';

function registrations(records: RegistrationRecord[] = []): RegistrationAdminStore {
  return {
    get: (id) => records.find((r) => r.registrationId.toLowerCase() === id.toLowerCase()),
    delete: (id) => {
      const index = records.findIndex((r) => r.registrationId.toLowerCase() === id.toLowerCase());
      if (index >= 0) records.splice(index, 1);
      return index >= 0;
    },
    listByGroup: (groupId, options = {}) =>
      pageOf(
        records.filter(
          (r) => r.enrollment.id === groupId && (options.after === undefined || r.registrationId > options.after),
        ),
        options.limit,
        (r) => r.registrationId,
      ),
  };
}

function service(records?: RegistrationRecord[], quotas?: EnrollmentQuotas) {
  const store = new MemoryEnrollmentStore();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const svc = new EnrollmentService({
    store,
    registrations: registrations(records),
    linkedHubs: [HUB],
    ...(quotas ? { quotas } : {}),
    now: () => {
      clock += 1000;
      return new Date(clock);
    },
  });
  return { svc, store };
}

const group = (id: string, extra: Record<string, unknown> = {}) => ({
  enrollmentGroupId: id,
  attestation: { type: 'symmetricKey' },
  ...extra,
});

describe('EnrollmentService', () => {
  it('creates with defaults, generated keys, an etag and DPS timestamps, in the service field order', () => {
    const { svc } = service();
    const created = svc.put('group', 'g1', group('g1'));
    if (!created.ok) throw new Error(created.message);
    expect(Object.keys(created.value)).toEqual([
      'enrollmentGroupId',
      'attestation',
      'capabilities',
      'etag',
      'provisioningStatus',
      'reprovisionPolicy',
      'createdDateTimeUtc',
      'lastUpdatedDateTimeUtc',
    ]);
    expect(created.value).toMatchObject({
      capabilities: { iotEdge: false },
      provisioningStatus: 'enabled',
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
      createdDateTimeUtc: '2026-01-01T00:00:01Z',
    });
    const keys = (created.value.attestation as { symmetricKey: { primaryKey: string; secondaryKey: string } })
      .symmetricKey;
    expect(Buffer.from(keys.primaryKey, 'base64')).toHaveLength(64);
    expect(keys.secondaryKey).not.toBe(keys.primaryKey);
  });

  it('keeps the current keys when an update leaves them out, and generates none anew', () => {
    const { svc } = service();
    const first = svc.put('group', 'g1', group('g1'));
    const again = svc.put('group', 'g1', group('g1', { provisioningStatus: 'disabled' }));
    if (!first.ok || !again.ok) throw new Error('put failed');
    expect(again.value.attestation).toEqual(first.value.attestation);
    expect(again.value.etag).not.toBe(first.value.etag);
    expect(again.value.createdDateTimeUtc).toBe(first.value.createdDateTimeUtc);
    expect(again.value.lastUpdatedDateTimeUtc).not.toBe(first.value.lastUpdatedDateTimeUtc);
  });

  it('honours If-Match: the current etag or * replace; another etag, or any on a missing enrollment, is 412', () => {
    const { svc } = service();
    const created = svc.put('individual', 'd1', { registrationId: 'd1', attestation: { type: 'symmetricKey' } });
    if (!created.ok) throw new Error(created.message);
    const etag = created.value.etag as string;
    expect(
      svc.put('individual', 'd1', { registrationId: 'd1', attestation: { type: 'symmetricKey' } }, '"other"'),
    ).toEqual(expect.objectContaining({ ok: false, errorCode: 412001 }));
    expect(svc.put('individual', 'D1', { registrationId: 'D1', attestation: { type: 'symmetricKey' } }, etag).ok).toBe(
      true,
    );
    expect(
      svc.put('individual', 'd2', { registrationId: 'd2', attestation: { type: 'symmetricKey' } }, '*'),
    ).toMatchObject({
      ok: false,
      errorCode: 412001,
    });
    expect(svc.delete('individual', 'd1', etag)).toMatchObject({ ok: false, errorCode: 412001 });
    expect(svc.delete('individual', 'd1', '*')).toEqual({ ok: true, value: null });
    expect(svc.get('individual', 'd1')).toMatchObject({ ok: false, errorCode: 404201 });
  });

  it('validates as DPS: 400004 with a message naming the field', () => {
    const { svc } = service();
    const refuse = (body: unknown, id = 'g1') => {
      const outcome = svc.put('group', id, body);
      if (outcome.ok) throw new Error('expected a refusal');
      expect(outcome.errorCode).toBe(400004);
      return outcome.message;
    };
    expect(refuse(group('g1', { allocationPolicy: 'custom' }))).toBe(
      "A CustomAllocationDefinition is required when the allocation policy is set to 'Custom'.",
    );
    expect(refuse(group('g1', { iotHubs: [HUB] }))).toBe(
      'allocationPolicy must be specified when iotHubs are specified.',
    );
    expect(refuse(group('g2'))).toContain('does not match "g1" in the request URL');
    expect(refuse([])).toContain('JSON object');
    expect(refuse(group('g1', { attestation: { type: 'tpm', tpm: { endorsementKey: 'ZWs=' } } }))).toContain(
      'enrollment groups do not support TPM',
    );
    expect(refuse(group('g1', { attestation: { type: 'x509', x509: {} } }))).toContain('signingCertificates');
    expect(
      refuse(
        group('g1', {
          attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: 'nope' } } } },
        }),
      ),
    ).toContain('is not a PEM or base64 DER X.509 certificate');
    expect(
      refuse(
        group('g1', {
          allocationPolicy: 'custom',
          customAllocationDefinition: { webhookUrl: 'ftp://x', apiVersion: '2021-10-01' },
        }),
      ),
    ).toContain('webhookUrl');
    expect(refuse(group('g1', { provisioningStatus: 'paused' }))).toContain('provisioningStatus');
  });

  it('pages queries with an opaque continuation token and refuses WHERE clauses', () => {
    const { svc } = service();
    for (const id of ['c', 'a', 'E', 'b', 'd']) svc.put('group', id, group(id));
    const ids: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = svc.query('group', { query: '*' }, '2', token);
      if (!page.ok) throw new Error(page.message);
      ids.push(...page.value.items.map((item) => item.enrollmentGroupId as string));
      token = page.value.continuationToken;
      pages++;
    } while (token);
    expect(ids).toEqual(['a', 'b', 'c', 'd', 'E']);
    expect(pages).toBe(3);
    expect(
      svc.query('group', { query: "SELECT * FROM enrollments WHERE x = 'y'" }, undefined, undefined),
    ).toMatchObject({
      ok: false,
      errorCode: 400004,
    });
    expect(svc.query('group', { query: '*' }, '0', undefined)).toMatchObject({ ok: false, errorCode: 400004 });
    expect(svc.query('group', { query: '*' }, '2', 'garbage')).toMatchObject({ ok: false, errorCode: 400004 });
    expect(svc.query('group', {}, '2', undefined)).toMatchObject({ ok: false, errorCode: 400004 });
  });

  it('runs the queries DPS runs and names what else a query has (it was run as *)', () => {
    for (const query of [
      '*',
      ' * ',
      'SELECT *',
      'select*',
      'SELECT * FROM enrollments',
      'select * from enrollmentGroups',
    ]) {
      expect(unsupportedQueryPart(query), query).toBeUndefined();
    }
    const refused: Array<[string, string]> = [
      ['', 'it is empty'],
      ['enrollments', 'it does not start with "*" or "SELECT *"'],
      ['SELECT', 'SELECT names nothing'],
      ['SELECT registrationId FROM enrollments', 'the projection "registrationId" (only * is)'],
      ['SELECT TOP 5 * FROM enrollments', 'the projection "TOP" (only * is)'],
      ["SELECT * FROM enrollments WHERE x = 'y'", 'the WHERE clause "WHERE x = \'y\'"'],
      ['* WHERE true', 'the WHERE clause "WHERE true"'],
      ['SELECT * FROM enrollments ORDER BY x', 'the part "ORDER BY x"'],
      ['SELECT * FROM enrollments e', 'the part "e"'],
      ['* FROM enrollments', 'the part "FROM enrollments"'],
    ];
    for (const [query, part] of refused) expect(unsupportedQueryPart(query), query).toBe(part);
    const { svc } = service();
    expect(svc.query('group', { query: 'SELECT * FROM enrollments ORDER BY x' }, undefined, undefined)).toEqual({
      ok: false,
      errorCode: 400004,
      message:
        'The query "SELECT * FROM enrollments ORDER BY x" is not supported: the part "ORDER BY x". DPS queries take only "*", "SELECT *" or "SELECT * FROM <collection>" (no WHERE, projection, TOP or ORDER BY).',
    });
    expect(svc.queryRegistrations('g', { query: 'SELECT deviceId' }, undefined, undefined)).toMatchObject({
      ok: false,
      errorCode: 400004,
    });
  });

  it('creates enrollments up to the quotas (individual; groups per attestation type), then answers 403001', async () => {
    const { svc } = service(undefined, { individualEnrollments: 2, enrollmentGroups: 1 });
    const individual = (id: string) => ({ registrationId: id, attestation: { type: 'symmetricKey' } });
    expect(svc.put('individual', 'i1', individual('i1')).ok).toBe(true);
    expect(svc.put('individual', 'i2', individual('i2')).ok).toBe(true);
    expect(svc.put('individual', 'i3', individual('i3'))).toEqual({
      ok: false,
      errorCode: 403001,
      message:
        'The provisioning service has 2 individual enrollments, its quota (limits.maxIndividualEnrollments, CLI --max-individual-enrollments; DPS allows 1,000,000): delete one first.',
    });
    // Replacing one at the quota is no creation; after a delete there is room again.
    expect(svc.put('individual', 'i2', { ...individual('i2'), deviceId: 'd2' }).ok).toBe(true);
    const bulk = svc.bulk({ mode: 'create', enrollments: [individual('i3')] });
    expect(bulk).toMatchObject({
      ok: true,
      value: { isSuccessful: false, errors: [{ registrationId: 'i3', errorCode: 403001 }] },
    });
    expect(svc.delete('individual', 'i1').ok).toBe(true);
    expect(svc.put('individual', 'i3', individual('i3')).ok).toBe(true);

    // Two CAs: one certificate, one group (409202 would come first).
    const certificates = [(await createTestCa('Quota CA 1')).cert, (await createTestCa('Quota CA 2')).cert];
    const x509Group = (id: string, certificate = certificates[0]) => ({
      enrollmentGroupId: id,
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate } } } },
    });
    expect(svc.put('group', 'g1', group('g1')).ok).toBe(true);
    expect(svc.put('group', 'g2', group('g2'))).toMatchObject({
      ok: false,
      errorCode: 403001,
      message:
        'The provisioning service has 1 enrollment groups with symmetricKey attestation, its quota (limits.maxEnrollmentGroups, CLI --max-enrollment-groups, per attestation type; DPS allows 100): delete one first.',
    });
    expect(svc.put('group', 'x1', x509Group('x1')).ok).toBe(true);
    // Turning the symmetric-key group into an X.509 one would make two X.509 groups.
    expect(svc.put('group', 'g1', x509Group('g1', certificates[1]))).toMatchObject({
      ok: false,
      errorCode: 403001,
    });
    expect(svc.put('group', 'g1', group('g1', { provisioningStatus: 'disabled' })).ok).toBe(true);
  });

  it('rebuilds the registration core view only when the store changed, and lists x509/tpm enrollments as unverifiable', () => {
    const { svc } = service();
    svc.put('group', 'g1', group('g1'));
    const first = svc.enrollments();
    expect(svc.enrollments()).toBe(first);
    svc.put('individual', 'tpm-1', {
      registrationId: 'tpm-1',
      attestation: { type: 'tpm', tpm: { endorsementKey: 'ZWs=' } },
    });
    const second = svc.enrollments();
    expect(second).not.toBe(first);
    expect(second.groups.map((g) => g.id)).toEqual(['g1']);
    expect(second.individuals.size).toBe(0);
    expect(second.unverifiable?.individuals.get('tpm-1')).toEqual({
      kind: 'individual',
      id: 'tpm-1',
      attestationType: 'tpm',
    });
  });

  it('bulk: at most 10, modes as DPS names them, per-item errors', () => {
    const { svc } = service();
    const item = (id: string) => ({ registrationId: id, attestation: { type: 'symmetricKey' } });
    expect(
      svc.bulk({ mode: 'create', enrollments: Array.from({ length: 11 }, (_, i) => item(`d${i}`)) }),
    ).toMatchObject({
      ok: false,
      errorCode: 400004,
    });
    expect(svc.bulk({ mode: 'upsert', enrollments: [item('d1')] })).toMatchObject({ ok: false, errorCode: 400004 });
    expect(svc.bulk({ mode: 'create', enrollments: [item('d1'), item('d2')] })).toEqual({
      ok: true,
      value: { isSuccessful: true, errors: [] },
    });
    const current = svc.get('individual', 'd1');
    if (!current.ok) throw new Error(current.message);
    const result = svc.bulk({
      mode: 'updateIfMatchETag',
      enrollments: [
        { ...item('d1'), etag: current.value.etag, provisioningStatus: 'disabled' },
        { ...item('d2'), etag: '"stale"' },
      ],
    });
    expect(result).toEqual({
      ok: true,
      value: {
        isSuccessful: false,
        errors: [{ registrationId: 'd2', errorCode: 412001, errorStatus: expect.any(String) }],
      },
    });
  });

  it('reports, deletes (If-Match) and queries registration records without the attestation fields', () => {
    const record: RegistrationRecord = {
      registrationId: 'dev-1',
      enrollment: { kind: 'group', id: 'g1' },
      result: {
        registrationId: 'dev-1',
        createdDateTimeUtc: '2026-01-01T00:00:00.0000000Z',
        assignedHub: HUB,
        deviceId: 'dev-1',
        status: 'assigned',
        substatus: 'initialAssignment',
        lastUpdatedDateTimeUtc: '2026-01-01T00:00:00.0000000Z',
        etag: 'ImV0YWci',
        symmetricKey: { enrollmentGroupId: 'g1' },
      } as RegistrationRecord['result'],
    };
    const { svc } = service([record]);
    const state = svc.registration('DEV-1');
    if (!state.ok) throw new Error(state.message);
    expect(state.value).not.toHaveProperty('symmetricKey');
    expect(state.value).toMatchObject({ registrationId: 'dev-1', status: 'assigned', etag: 'ImV0YWci' });
    expect(svc.queryRegistrations('g1', { query: '*' }, undefined, undefined)).toMatchObject({
      ok: true,
      value: { items: [{ registrationId: 'dev-1' }] },
    });
    expect(svc.deleteRegistration('dev-1', 'other')).toMatchObject({ ok: false, errorCode: 412001 });
    expect(svc.deleteRegistration('dev-1', 'ImV0YWci')).toEqual({ ok: true, value: null });
    expect(svc.registration('dev-1')).toMatchObject({ ok: false, errorCode: 404203 });
  });
});

describe('etagMatches', () => {
  it('ignores quotes and a weak prefix; * and absent match anything', () => {
    expect(etagMatches(undefined, '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('a', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
  });
});
