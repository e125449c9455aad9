// The DPS service API driven by the official, unmodified `azure-iot-provisioning-service` SDK (and
// the official device SDK for the registrations), against a real emulator over real TLS.
import https from 'node:https';
import {
  COSMOS_ETAG_PATTERN,
  createSasToken,
  DPS_TIMESTAMP_PATTERN,
  deriveDeviceKey,
  generateSymmetricKey,
} from '@dpskit/contracts';
import type { LogRecord as EmulatorLogRecord } from '@dpskit/node-kit';
import provisioningService from 'azure-iot-provisioning-service';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { withEmulator } from '../sdk/index.js';
import {
  closedPortUrl,
  HUB_A,
  HUB_B,
  startTestEmulator,
  tempStateDir,
  testConfig,
  testEmulatorOptions,
} from '../testing/fixtures.js';
import { type RawResponse, rawRequest } from '../testing/raw-https.js';
import { register } from '../testing/sdk.js';
import { type ServiceClient, sdkFailure, serviceClient } from '../testing/service-sdk.js';
import { startWebhook, type TestWebhook } from '../testing/webhook-server.js';

const { ProvisioningServiceClient } = provisioningService;

/**
 * Waits until the next warning of `event` is logged in full: the HTTPS listener logs each kind any
 * client can cause at most once in full a second, the rest counted (limitWarnings, on the wall
 * clock here), and these tests read the full line.
 */
async function untilLoggedInFull(logs: readonly EmulatorLogRecord[], event: string): Promise<void> {
  const last = logs.findLast((l) => l.event === event && l.suppressed === undefined);
  const wait = last ? Date.parse(last.time) + 1000 - Date.now() : 0;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 5));
}
type Json = Record<string, unknown>;

/** The tutorial's webhook, scripted: toasters go to hub A, heat pumps are refused with 400. */
function tutorialWebhook(name: string) {
  return startWebhook((request) => {
    const id = request.deviceRuntimeContext.registrationId;
    if (id.includes('heatpump')) return { status: 400, body: { message: 'unknown device type' } };
    return { body: { iotHubHostName: HUB_A, payload: { webhook: name }, initialTwin: { tags: { type: 'toaster' } } } };
  });
}

describe('the DPS service API with the official service SDK', () => {
  let emulator: Emulator;
  let client: ServiceClient;
  let webhook: TestWebhook;
  let otherWebhook: TestWebhook;
  let state: ReturnType<typeof tempStateDir>;
  let config: ReturnType<typeof testConfig>;
  const events: RegistrationEvent[] = [];
  const logs: EmulatorLogRecord[] = [];

  const start = async () => {
    const started = await startTestEmulator(
      testEmulatorOptions(config, state.path, { log: (record) => logs.push(record) }),
    );
    started.emulator.on('registration', (event) => events.push(event));
    emulator = started.emulator;
    client = serviceClient(emulator);
  };

  beforeAll(async () => {
    webhook = await tutorialWebhook('first');
    otherWebhook = await tutorialWebhook('second');
    state = tempStateDir();
    config = testConfig(webhook.url, await closedPortUrl());
    await start();
  });

  afterAll(async () => {
    await emulator?.stop();
    await webhook?.close();
    await otherWebhook?.close();
    state?.remove();
  });

  const body = <T = Json>(result: { responseBody: unknown }) => result.responseBody as T;

  describe('enrollments of every attestation type: create, get, update (etags), attestation mechanism, delete', () => {
    const certificate = () => emulator.caCertPem;
    const cases = [
      {
        name: 'symmetric-key enrollment group',
        kind: 'group' as const,
        make: (id: string) => ({ enrollmentGroupId: id, attestation: { type: 'symmetricKey' } }),
      },
      {
        name: 'x509 enrollment group',
        kind: 'group' as const,
        make: (id: string) => ({
          enrollmentGroupId: id,
          attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: certificate() } } } },
        }),
      },
      {
        name: 'symmetric-key individual enrollment',
        kind: 'individual' as const,
        make: (id: string) => ({
          registrationId: id,
          deviceId: `${id}-device`,
          attestation: {
            type: 'symmetricKey',
            symmetricKey: { primaryKey: generateSymmetricKey(32), secondaryKey: generateSymmetricKey(32) },
          },
          optionalDeviceInformation: { model: 'T-1000' },
        }),
      },
      {
        name: 'x509 individual enrollment',
        kind: 'individual' as const,
        make: (id: string) => ({
          registrationId: id,
          attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: certificate() } } } },
        }),
      },
      {
        name: 'tpm individual enrollment',
        kind: 'individual' as const,
        make: (id: string) => ({
          registrationId: id,
          attestation: { type: 'tpm', tpm: { endorsementKey: Buffer.from('an endorsement key').toString('base64') } },
        }),
      },
    ];

    for (const testCase of cases) {
      it(testCase.name, async () => {
        const id = `crud-${testCase.name.replaceAll(' ', '-')}`;
        const group = testCase.kind === 'group';
        const api = {
          put: (e: Json) =>
            group
              ? client.createOrUpdateEnrollmentGroup(e as never)
              : client.createOrUpdateIndividualEnrollment(e as never),
          get: () => (group ? client.getEnrollmentGroup(id) : client.getIndividualEnrollment(id)),
          attestation: () =>
            group
              ? client.getEnrollmentGroupAttestationMechanism(id)
              : client.getIndividualEnrollmentAttestationMechanism(id),
          delete: (etag?: string) =>
            group
              ? etag
                ? client.deleteEnrollmentGroup(id, etag)
                : client.deleteEnrollmentGroup(id)
              : etag
                ? client.deleteIndividualEnrollment(id, etag)
                : client.deleteIndividualEnrollment(id),
        };
        const sent = {
          ...testCase.make(id),
          capabilities: { iotEdge: true },
          initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 5 } } },
          reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
        };

        const created = body(await api.put(sent));
        expect(created).toMatchObject({
          capabilities: { iotEdge: true },
          initialTwin: sent.initialTwin,
          reprovisionPolicy: sent.reprovisionPolicy,
          provisioningStatus: 'enabled',
        });
        expect(created.etag).toMatch(COSMOS_ETAG_PATTERN);
        expect(created.createdDateTimeUtc).toMatch(DPS_TIMESTAMP_PATTERN);
        expect(created.lastUpdatedDateTimeUtc).toBe(created.createdDateTimeUtc);
        const attestation = created.attestation as Json;
        expect(attestation.type).toBe(sent.attestation.type);
        if (sent.attestation.type === 'symmetricKey') {
          // Given keys are kept; left-out keys are generated (64 bytes, as DPS).
          const keys = attestation.symmetricKey as { primaryKey: string; secondaryKey: string };
          const given = (sent.attestation as { symmetricKey?: Json }).symmetricKey;
          if (given) expect(keys).toEqual(given);
          else expect(Buffer.from(keys.primaryKey, 'base64')).toHaveLength(64);
        }
        if (sent.attestation.type === 'x509') {
          const x509 = attestation.x509 as Record<string, { primary: { info: Json; certificate?: string } }>;
          const slot = Object.values(x509)[0]?.primary;
          expect(slot?.certificate).toBeUndefined();
          expect(slot?.info).toMatchObject({ subjectName: expect.stringContaining('CN='), version: 3 });
          expect(slot?.info.sha256Thumbprint).toMatch(/^[0-9A-F]{64}$/);
        }

        // GET: the same record, without the symmetric keys (attestationmechanism has them).
        const got = body(await api.get());
        const { attestation: _a, ...withoutAttestation } = created;
        expect(got).toMatchObject(withoutAttestation);
        expect((got.attestation as Json).symmetricKey).toBeUndefined();
        const info = (sent as Json).optionalDeviceInformation;
        if (info) expect(got.optionalDeviceInformation).toEqual(info);

        // Update with the right etag: a new etag, created time kept.
        const updated = body(await api.put({ ...got, provisioningStatus: 'disabled' }));
        expect(updated.provisioningStatus).toBe('disabled');
        expect(updated.etag).not.toBe(created.etag);
        expect(updated.createdDateTimeUtc).toBe(created.createdDateTimeUtc);
        expect(updated.attestation).toEqual(created.attestation);

        // A stale etag: 412, nothing changed.
        const stale = await sdkFailure(api.put({ ...got, provisioningStatus: 'enabled' }));
        expect(stale).toMatchObject({ status: 412, name: 'InvalidEtagError', body: { errorCode: 412001 } });
        expect(body(await api.get()).provisioningStatus).toBe('disabled');

        // Without an etag: create-or-update overwrites.
        const { etag: _e, ...noEtag } = got;
        const overwritten = body(await api.put({ ...noEtag, provisioningStatus: 'enabled' }));
        expect(overwritten.provisioningStatus).toBe('enabled');

        const mechanism = body(await api.attestation());
        expect(mechanism.type).toBe(sent.attestation.type);
        if (sent.attestation.type === 'symmetricKey') expect(mechanism).toEqual(created.attestation);
        if (sent.attestation.type === 'tpm') expect(mechanism).toEqual(sent.attestation);

        expect(await sdkFailure(api.delete(created.etag as string))).toMatchObject({ status: 412 });
        await api.delete(overwritten.etag as string);
        const gone = await sdkFailure(api.get());
        expect(gone.status).toBe(404);
        expect(gone.body).toMatchObject({ errorCode: group ? 404202 : 404201 });
      });
    }

    it('refuses invalid enrollments with 400004 and a message naming the cause', async () => {
      const refused = async (enrollment: Json) => sdkFailure(client.createOrUpdateEnrollmentGroup(enrollment as never));
      expect(
        await refused({
          enrollmentGroupId: 'bad-1',
          attestation: { type: 'symmetricKey' },
          allocationPolicy: 'custom',
        }),
      ).toMatchObject({
        status: 400,
        name: 'ArgumentError',
        body: { errorCode: 400004, message: expect.stringContaining('CustomAllocationDefinition is required') },
      });
      expect(
        (await refused({ enrollmentGroupId: 'bad-2', attestation: { type: 'symmetricKey' }, iotHubs: [HUB_A] })).body,
      ).toMatchObject({ errorCode: 400004, message: 'allocationPolicy must be specified when iotHubs are specified.' });
      expect(
        (
          await refused({
            enrollmentGroupId: 'bad-3',
            attestation: { type: 'symmetricKey' },
            allocationPolicy: 'static',
            iotHubs: ['not-linked.azure-devices.net'],
          })
        ).body.message,
      ).toContain('not-linked.azure-devices.net');
      expect(
        (
          await refused({
            enrollmentGroupId: 'bad-4',
            attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'c2hvcnQ=' } },
          })
        ).body.message,
      ).toContain('attestation.symmetricKey.primaryKey');
      expect((await refused({ enrollmentGroupId: 'bad-5' })).body.message).toContain('attestation');
      expect(
        (await refused({ enrollmentGroupId: 'bad 6', attestation: { type: 'symmetricKey' } })).body.message,
      ).toContain('enrollmentGroupId');
    });

    it('refuses an initialTwin its hub would refuse with 400004 naming the field; one within the rules provisions', async () => {
      // Accepted before, such a twin failed every registration of the enrollment with 500001 Internal error.
      const deep = (levels: number): Json => (levels === 0 ? { leaf: 1 } : { a: deep(levels - 1) });
      const cases: Array<[Json, RegExp]> = [
        [
          // Two strings of 4 KB, IoT Hub's longest string value.
          { tags: { a: 'x'.repeat(4096), b: 'x'.repeat(4096) } },
          /^Invalid initialTwin\.tags: tags is 8194 bytes by IoT Hub's twin size measure, over its 8192-byte limit\.$/,
        ],
        [
          { tags: { big: 'x'.repeat(4097) } },
          /^Invalid initialTwin\.tags: tags\.big is a 4097-byte string, over IoT Hub's 4096-byte limit for a string value\.$/,
        ],
        [{ tags: { $bad: 1 } }, /^Invalid initialTwin\.tags: property name "\$bad" in tags contains '\.', '\$'/],
        [{ tags: { 'a.b': 1 } }, /^Invalid initialTwin\.tags: property name "a\.b"/],
        [
          { properties: { desired: deep(10) } },
          /^Invalid initialTwin\.properties\.desired: desired(\.a){10} nests deeper than 10 levels\.$/,
        ],
        [
          { properties: { desired: Object.fromEntries([...'abcdefghi'].map((k) => [k, 'x'.repeat(4000)])) } },
          /^Invalid initialTwin\.properties\.desired: desired is 36009 bytes by IoT Hub's twin size measure, over its 32768-byte limit\.$/,
        ],
        [
          { properties: { desired: { $version: 3 } } },
          /^Invalid initialTwin\.properties\.desired: property name "\$version"/,
        ],
      ];
      for (const [index, [initialTwin, message]] of cases.entries()) {
        const id = `bad-twin-${index}`;
        const failure = await sdkFailure(
          client.createOrUpdateEnrollmentGroup({
            enrollmentGroupId: id,
            attestation: { type: 'symmetricKey' },
            allocationPolicy: 'hashed',
            iotHubs: [HUB_A],
            initialTwin,
          } as never),
        );
        expect(failure, JSON.stringify(initialTwin).slice(0, 100)).toMatchObject({
          status: 400,
          body: { errorCode: 400004, message: expect.stringMatching(message) },
        });
        expect((await sdkFailure(client.getEnrollmentGroup(id))).status).toBe(404);
      }
      const bulk = await new Promise<Json>((resolve, reject) =>
        // The SDK's promise form of runBulkEnrollmentOperation never settles (its own bug): use the callback.
        client.runBulkEnrollmentOperation(
          {
            mode: 'create',
            enrollments: [
              {
                registrationId: 'bad-twin-device',
                attestation: { type: 'symmetricKey' },
                initialTwin: { tags: { $x: 1 } },
              },
            ],
          } as never,
          (err, result) => (err ? reject(err) : resolve(result as unknown as Json)),
        ),
      );
      expect(bulk).toMatchObject({
        isSuccessful: false,
        errors: [
          {
            registrationId: 'bad-twin-device',
            errorCode: 400004,
            errorStatus: expect.stringMatching(/^Invalid initialTwin\.tags: /),
          },
        ],
      });

      // At the limits (8 KB of tags, 10 levels, nulls) the twin is accepted, and its device is assigned.
      // {"a":"…","b":"…","none":null}: 8,192 bytes (a string value is at most 4 KB).
      const tags = { a: 'x'.repeat(4096), b: 'x'.repeat(4069), none: null };
      const initialTwin = { tags, properties: { desired: deep(9) } };
      await client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'twin-at-limits',
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'hashed',
        iotHubs: [HUB_A],
        initialTwin,
      } as never);
      const keys = body<{ symmetricKey: { primaryKey: string } }>(
        await client.getEnrollmentGroupAttestationMechanism('twin-at-limits'),
      );
      const errorsBefore = logs.filter((l) => l.level === 'error').length;
      expect(
        await register(
          emulator,
          'twin-at-limits-device',
          deriveDeviceKey(keys.symmetricKey.primaryKey, 'twin-at-limits-device'),
        ),
      ).toMatchObject({ status: 'assigned', assignedHub: HUB_A });
      expect(logs.filter((l) => l.level === 'error').length).toBe(errorsBefore);
      await client.deleteEnrollmentGroup('twin-at-limits');
    });
  });

  it('pages a query over more enrollments than the page size', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `paged-${i}`);
    for (const id of ids)
      await client.createOrUpdateIndividualEnrollment({
        registrationId: id,
        attestation: { type: 'symmetricKey' },
      } as never);
    const query = client.createIndividualEnrollmentQuery({ query: '*' }, 3);
    const seen: string[] = [];
    const pageSizes: number[] = [];
    const itemTypes: unknown[] = [];
    while (query.hasMoreResults) {
      const page = await new Promise<{ items: Json[]; headers: Json }>((resolve, reject) =>
        query.next((err, result, response) =>
          err
            ? reject(err)
            : resolve({ items: result as unknown as Json[], headers: (response as { headers: Json }).headers }),
        ),
      );
      pageSizes.push(page.items.length);
      itemTypes.push(page.headers['x-ms-item-type']);
      seen.push(...page.items.map((item) => item.registrationId as string));
      expect(page.items.every((item) => (item.attestation as Json).symmetricKey === undefined)).toBe(true);
    }
    expect(pageSizes.every((size) => size <= 3)).toBe(true);
    expect(pageSizes.length).toBeGreaterThanOrEqual(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(ids));
    expect(itemTypes.every((type) => type === 'Enrollment')).toBe(true);

    const groups = client.createEnrollmentGroupQuery({ query: '*' }, 2);
    const first = await new Promise<Json[]>((resolve, reject) =>
      groups.next((err, result) => (err ? reject(err) : resolve(result as unknown as Json[]))),
    );
    expect(first).toHaveLength(2);
    expect(groups.hasMoreResults).toBe(true);
  });

  it('takes x-ms-max-item-count as applied: answers the page size it used, -1 for the default, and refuses what is no page size', async () => {
    const firstPage = (pageSize: number) =>
      new Promise<{ items: Json[]; headers: Json }>((resolve, reject) =>
        client
          .createEnrollmentGroupQuery({ query: '*' }, pageSize)
          .next((err, result, response) =>
            err
              ? reject(err)
              : resolve({ items: result as unknown as Json[], headers: (response as { headers: Json }).headers }),
          ),
      );
    // The official SDK sends the number it is given (any but 0): answered with the size applied.
    expect((await firstPage(2)).headers['x-ms-max-item-count']).toBe('2');
    expect((await firstPage(5000)).headers['x-ms-max-item-count']).toBe('1000');
    // -1 is Cosmos DB's "the service chooses": the default, 100 (it was refused with 400).
    expect((await firstPage(-1)).headers['x-ms-max-item-count']).toBe('100');
    const token = createSasToken({
      resource: 'localhost',
      key: emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
      keyName: 'provisioningserviceowner',
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    const query = (pageSize?: string) =>
      rawRequest(emulator, {
        method: 'POST',
        path: '/enrollmentGroups/query?api-version=2021-10-01',
        headers: { Authorization: token, ...(pageSize === undefined ? {} : { 'x-ms-max-item-count': pageSize }) },
        body: '{"query":"*"}',
      });
    expect((await query()).headers['x-ms-max-item-count']).toBe('100');
    expect((await query('0005')).headers['x-ms-max-item-count']).toBe('5');
    expect((await query(`${'0'.repeat(40)}7`)).headers['x-ms-max-item-count']).toBe('7');
    expect((await query('2147483647')).headers['x-ms-max-item-count']).toBe('1000');
    for (const refused of ['0', '-2', 'abc', '1.5', '1e3', '2147483648', '99999999999999999999']) {
      const answer = await query(refused);
      expect(answer.status, `${refused}: ${answer.text}`).toBe(400);
      expect(answer.json).toMatchObject({
        errorCode: 400004,
        message: `Invalid x-ms-max-item-count "${refused}": give a whole number from 1 to 2147483647 (pages hold at most 1000), or -1 for the default (100).`,
      });
    }
  });

  it('runs the query forms the SDKs and their samples send, and refuses others naming the part (they were run as *)', async () => {
    const run = (query: string) =>
      new Promise<Json[]>((resolve, reject) =>
        client
          .createEnrollmentGroupQuery({ query })
          .next((err, result) => (err ? reject(err) : resolve(result as unknown as Json[]))),
      );
    const all = await run('*');
    expect(all.length).toBeGreaterThan(0);
    for (const query of ['SELECT *', 'SELECT * FROM enrollmentGroups', 'select * from enrollments']) {
      expect(await run(query), query).toHaveLength(all.length);
    }
    const refused: Array<[string, string]> = [
      ['SELECT * FROM enrollmentGroups ORDER BY enrollmentGroupId', 'the part "ORDER BY enrollmentGroupId"'],
      ['SELECT enrollmentGroupId FROM enrollmentGroups', 'the projection "enrollmentGroupId" (only * is)'],
      [
        "SELECT * FROM enrollmentGroups WHERE allocationPolicy = 'custom'",
        `the WHERE clause "WHERE allocationPolicy = 'custom'"`,
      ],
    ];
    for (const [query, part] of refused) {
      expect(await sdkFailure(run(query)), query).toMatchObject({
        status: 400,
        name: 'ArgumentError',
        body: {
          errorCode: 400004,
          message: `The query "${query}" is not supported: ${part}. DPS queries take only "*", "SELECT *" or "SELECT * FROM <collection>" (no WHERE, projection, TOP or ORDER BY).`,
        },
      });
    }
    const registrations = client.createEnrollmentGroupDeviceRegistrationStateQuery(
      { query: 'SELECT TOP 1 *' },
      'hashed-group',
    );
    const failure = await sdkFailure(
      new Promise((resolve, reject) => registrations.next((err, result) => (err ? reject(err) : resolve(result)))),
    );
    expect(failure).toMatchObject({ status: 400, body: { errorCode: 400004 } });
  });

  it('cuts a query page at 4 MiB of enrollments or registration records, the rest following by continuation', async () => {
    // Five enrollments of about 1 MB each (a field of their own: unknown fields round-trip).
    const ids = Array.from({ length: 5 }, (_, i) => `big-page-${i}`);
    for (const id of ids)
      await client.createOrUpdateIndividualEnrollment({
        registrationId: id,
        attestation: { type: 'symmetricKey' },
        notes: 'n'.repeat(1_000_000),
      } as never);
    const query = client.createIndividualEnrollmentQuery({ query: '*' }, 1000);
    const pages: Json[][] = [];
    while (query.hasMoreResults) {
      pages.push(
        await new Promise<Json[]>((resolve, reject) =>
          query.next((err, result) => (err ? reject(err) : resolve(result as unknown as Json[]))),
        ),
      );
    }
    const checkPages = (pages: Json[][], expected: string[]) => {
      for (const page of pages) expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThanOrEqual(4 * 1024 * 1024);
      const seen = pages.flat().map((item) => item.registrationId as string);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(expect.arrayContaining(expected));
      expect(pages.length).toBeGreaterThan(1);
    };
    checkPages(pages, ids);
    for (const id of ids) await client.deleteIndividualEnrollment(id);

    // The registration records of a group: 48 devices, each given a payload of about 90 KB by the webhook.
    const echo = await startWebhook((request) => ({
      body: { iotHubHostName: HUB_A, payload: request.deviceRuntimeContext.payload },
    }));
    const groupId = 'big-page-group';
    await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: groupId,
      attestation: { type: 'symmetricKey' },
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: echo.url, apiVersion: '2021-10-01' },
      iotHubs: [HUB_A],
    } as never);
    const keys = body<{ symmetricKey: { primaryKey: string } }>(
      await client.getEnrollmentGroupAttestationMechanism(groupId),
    );
    const devices = Array.from({ length: 48 }, (_, i) => `big-page-device-${i}`);
    for (let i = 0; i < devices.length; i += 8) {
      await Promise.all(
        devices.slice(i, i + 8).map((id) =>
          register(emulator, id, deriveDeviceKey(keys.symmetricKey.primaryKey, id), {
            payload: { notes: 'p'.repeat(90_000) },
          }),
        ),
      );
    }
    const states = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, groupId, 1000);
    const statePages: Json[][] = [];
    while (states.hasMoreResults) {
      statePages.push(
        await new Promise<Json[]>((resolve, reject) =>
          states.next((err, result) => (err ? reject(err) : resolve(result as unknown as Json[]))),
        ),
      );
    }
    checkPages(statePages, devices);
    for (const id of devices) await client.deleteDeviceRegistrationState(id);
    await client.deleteEnrollmentGroup(groupId);
    await echo.close();
  });

  it('runs a bulk operation with mixed results, as the service reports them', async () => {
    await client.createOrUpdateIndividualEnrollment({
      registrationId: 'bulk-existing',
      attestation: { type: 'symmetricKey' },
    } as never);
    const run = (operation: Json) =>
      new Promise<Json>((resolve, reject) =>
        // The SDK's promise form of runBulkEnrollmentOperation never settles (its own bug): use the callback.
        client.runBulkEnrollmentOperation(operation as never, (err, result) =>
          err ? reject(err) : resolve(result as unknown as Json),
        ),
      );
    const result = await run({
      mode: 'create',
      enrollments: [
        { registrationId: 'bulk-new-1', attestation: { type: 'symmetricKey' } },
        { registrationId: 'bulk-existing', attestation: { type: 'symmetricKey' } },
        { registrationId: 'bulk-new-2', attestation: { type: 'tpm', tpm: {} } },
        {
          registrationId: 'bulk-new-3',
          attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: emulator.caCertPem } } } },
        },
      ],
    });
    expect(result.isSuccessful).toBe(false);
    expect(result.errors).toEqual([
      {
        registrationId: 'bulk-existing',
        errorCode: 409201,
        errorStatus: 'Individual enrollment "bulk-existing" already exists.',
      },
      { registrationId: 'bulk-new-2', errorCode: 400004, errorStatus: expect.stringContaining('endorsementKey') },
    ]);
    expect(body(await client.getIndividualEnrollment('bulk-new-1')).registrationId).toBe('bulk-new-1');
    expect(body(await client.getIndividualEnrollment('bulk-new-3')).attestation).toMatchObject({ type: 'x509' });

    const deleted = await run({
      mode: 'delete',
      enrollments: [{ registrationId: 'bulk-new-1' }, { registrationId: 'bulk-missing' }],
    });
    expect(deleted).toMatchObject({
      isSuccessful: false,
      errors: [{ registrationId: 'bulk-missing', errorCode: 404201 }],
    });
    expect((await sdkFailure(client.getIndividualEnrollment('bulk-new-1'))).status).toBe(404);

    // An item without a string registrationId is refused naming the field, in every mode (a delete
    // looked up "[object Object]" and answered 404201, and took a number as an id: it deleted "5").
    await client.createOrUpdateIndividualEnrollment({
      registrationId: '5',
      attestation: { type: 'symmetricKey' },
    } as never);
    for (const mode of ['delete', 'update']) {
      const odd = await run({
        mode,
        enrollments: [
          { registrationId: { id: 'bulk-new-3' }, attestation: { type: 'symmetricKey' } },
          { registrationId: 5, attestation: { type: 'symmetricKey' } },
          { attestation: { type: 'symmetricKey' } },
        ],
      });
      expect(odd).toEqual({
        isSuccessful: false,
        errors: [
          {
            registrationId: '{"id":"bulk-new-3"}',
            errorCode: 400004,
            errorStatus: 'Invalid registrationId: give a string, not an object.',
          },
          {
            registrationId: '5',
            errorCode: 400004,
            errorStatus: 'Invalid registrationId: give a string, not a number.',
          },
          { registrationId: '', errorCode: 400004, errorStatus: 'registrationId is required.' },
        ],
      });
    }
    expect(body(await client.getIndividualEnrollment('5')).registrationId).toBe('5');
    expect(body(await client.getIndividualEnrollment('bulk-new-3')).registrationId).toBe('bulk-new-3');
    await client.deleteIndividualEnrollment('5');
  });

  describe('a group created through the SDK serves the official device SDK at once', () => {
    const groupId = 'sdk-tutorial-group';
    const groupKey = generateSymmetricKey();
    let group: Json;

    beforeAll(async () => {
      group = body(
        await client.createOrUpdateEnrollmentGroup({
          enrollmentGroupId: groupId,
          attestation: {
            type: 'symmetricKey',
            symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() },
          },
          allocationPolicy: 'custom',
          iotHubs: [HUB_A, HUB_B],
          customAllocationDefinition: { webhookUrl: webhook.url, apiVersion: '2021-10-01' },
          reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
        } as never),
      );
    });

    it('provisions a toaster through the webhook and refuses a heat pump with 400207; the registration state reads back equal', async () => {
      const toaster = await register(
        emulator,
        'sdk-contoso-toaster-007',
        deriveDeviceKey(groupKey, 'sdk-contoso-toaster-007'),
        {
          transport: 'https',
        },
      );
      expect(toaster).toMatchObject({ status: 'assigned', assignedHub: HUB_A, substatus: 'initialAssignment' });
      expect(webhook.callsFor('sdk-contoso-toaster-007')).toHaveLength(1);

      const heatpump = register(
        emulator,
        'sdk-contoso-heatpump-088',
        deriveDeviceKey(groupKey, 'sdk-contoso-heatpump-088'),
      );
      await expect(heatpump).rejects.toThrow();
      const failed = body(await client.getDeviceRegistrationState('sdk-contoso-heatpump-088'));
      expect(failed).toMatchObject({
        status: 'failed',
        errorCode: 400207,
        errorMessage: 'Custom allocation failed with status code: 400',
      });

      const state = body(await client.getDeviceRegistrationState('sdk-contoso-toaster-007'));
      const { symmetricKey: _s, ...deviceGot } = toaster as Json;
      expect(state).toEqual(deviceGot);

      const registrations = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, groupId, 1);
      const ids: string[] = [];
      while (registrations.hasMoreResults) {
        const page = await new Promise<Json[]>((resolve, reject) =>
          registrations.next((err, result) => (err ? reject(err) : resolve(result as unknown as Json[]))),
        );
        ids.push(...page.map((r) => r.registrationId as string));
      }
      expect(ids).toEqual(['sdk-contoso-heatpump-088', 'sdk-contoso-toaster-007']);
    });

    it('a deleted registration state makes the next registration an initial assignment', async () => {
      const id = 'sdk-contoso-toaster-008';
      const key = deriveDeviceKey(groupKey, id);
      await register(emulator, id, key);
      await register(emulator, id, key);
      // The second registration knew the device's current assignment; it is sent to the webhook.
      expect(webhook.callsFor(id).at(-1)?.body.deviceRuntimeContext).toHaveProperty('currentIotHubHostName', HUB_A);
      const state = body(await client.getDeviceRegistrationState(id));
      expect((await sdkFailure(client.deleteDeviceRegistrationState(id, '"stale"'))).status).toBe(412);
      await client.deleteDeviceRegistrationState(state as never);
      expect((await sdkFailure(client.getDeviceRegistrationState(id))).body).toMatchObject({ errorCode: 404203 });
      const fresh = await register(emulator, id, key);
      expect(fresh).toMatchObject({ status: 'assigned', substatus: 'initialAssignment' });
      expect(webhook.callsFor(id).at(-1)?.body.deviceRuntimeContext).not.toHaveProperty('currentIotHubHostName');
    });

    it('a change through the API applies to the next device request: webhook URL, disabled, rotated key', async () => {
      const id = 'sdk-contoso-toaster-009';
      const current = body(await client.getEnrollmentGroup(groupId));
      const moved = body(
        await client.createOrUpdateEnrollmentGroup({
          ...current,
          customAllocationDefinition: { webhookUrl: otherWebhook.url, apiVersion: '2021-10-01' },
        } as never),
      );
      expect(await register(emulator, id, deriveDeviceKey(groupKey, id))).toMatchObject({
        status: 'assigned',
        payload: { webhook: 'second' },
      });
      expect(otherWebhook.callsFor(id)).toHaveLength(1);
      expect(webhook.callsFor(id)).toHaveLength(0);

      const disabled = body(
        await client.createOrUpdateEnrollmentGroup({ ...moved, provisioningStatus: 'disabled' } as never),
      );
      await expect(register(emulator, id, deriveDeviceKey(groupKey, id), { transport: 'https' })).rejects.toThrow();
      expect(body(await client.getDeviceRegistrationState(id)).status).toBe('disabled');

      const newKey = generateSymmetricKey();
      await client.createOrUpdateEnrollmentGroup({
        ...disabled,
        provisioningStatus: 'enabled',
        attestation: {
          type: 'symmetricKey',
          symmetricKey: { primaryKey: newKey, secondaryKey: generateSymmetricKey() },
        },
      } as never);
      const refused = register(
        emulator,
        'sdk-contoso-toaster-010',
        deriveDeviceKey(groupKey, 'sdk-contoso-toaster-010'),
      );
      await expect(refused).rejects.toThrow();
      expect(events.at(-1)).toMatchObject({
        registrationId: 'sdk-contoso-toaster-010',
        outcome: { status: 'unauthorized' },
      });
      expect(
        await register(emulator, 'sdk-contoso-toaster-010', deriveDeviceKey(newKey, 'sdk-contoso-toaster-010')),
      ).toMatchObject({
        status: 'assigned',
      });
    });

    it('devices of tpm enrollments get 401 and the log says why', async () => {
      await client.createOrUpdateIndividualEnrollment({
        registrationId: 'tpm-device-1',
        attestation: { type: 'tpm', tpm: { endorsementKey: Buffer.from('ek').toString('base64') } },
      } as never);
      // Refused registrations are logged at most once in full a second (the rest counted): this one in full.
      await untilLoggedInFull(logs, 'registration');
      await expect(register(emulator, 'tpm-device-1', generateSymmetricKey())).rejects.toThrow();
      const event = events.findLast((e) => e.registrationId === 'tpm-device-1');
      expect(event?.outcome).toMatchObject({
        status: 'unauthorized',
        errorMessage: expect.stringContaining('uses tpm attestation, which the emulator cannot verify'),
      });
      expect(logs.some((l) => l.event === 'registration' && String(l.msg).includes('tpm attestation'))).toBe(true);
      expect(group.etag).toBeDefined();
    });
  });

  describe('authorization', () => {
    const connectionString = (name: string, key: string) =>
      `HostName=localhost;SharedAccessKeyName=${name};SharedAccessKey=${key}`;

    it('refuses a wrong key, an expired token and an unknown policy with 401, and keeps serving both APIs', async () => {
      const wrongKey = serviceClient(emulator, connectionString('provisioningserviceowner', generateSymmetricKey(32)));
      const unknownPolicy = serviceClient(
        emulator,
        connectionString('nosuchpolicy', emulator.sharedAccessPolicies[0]?.primaryKey ?? ''),
      );
      const expiredToken = createSasToken({
        resource: 'localhost',
        key: emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
        keyName: 'provisioningserviceowner',
        expiresAt: Math.floor(Date.now() / 1000) - 60,
      });
      const expired = withEmulator(
        new ProvisioningServiceClient({ host: 'localhost', sharedAccessSignature: expiredToken } as never),
        emulator,
      );

      for (const [who, c] of [
        ['wrong key', wrongKey],
        ['unknown policy', unknownPolicy],
        ['expired token', expired],
      ] as const) {
        const failure = await sdkFailure(c.getEnrollmentGroup('hashed-group'));
        expect(failure, who).toMatchObject({
          status: 401,
          name: 'UnauthorizedError',
          body: { errorCode: 401002, message: 'Unauthorized', trackingId: expect.any(String) },
        });
      }
      // Each refusal's reason is logged: in a line of its own, or counted in the line that follows
      // within a second (at most one full line a second).
      const reasons = () =>
        logs
          .filter((l) => l.event === 'service.auth')
          .flatMap((l) => (l.reason !== undefined ? [l.reason] : Object.keys((l.reasons as object | undefined) ?? {})));
      await vi.waitFor(
        () => expect(reasons()).toEqual(expect.arrayContaining(['signature-mismatch', 'unknown-policy', 'expired'])),
        { timeout: 30_000, interval: 50 },
      );
      expect(JSON.stringify(logs)).not.toContain(expiredToken.split('sig=')[1]?.split('&')[0]);

      // Both APIs keep serving.
      const mechanism = body<{ symmetricKey: { primaryKey: string } }>(
        await client.getEnrollmentGroupAttestationMechanism('hashed-group'),
      );
      const deviceKey = deriveDeviceKey(mechanism.symmetricKey.primaryKey, 'after-401-device');
      expect(await register(emulator, 'after-401-device', deviceKey)).toMatchObject({ status: 'assigned' });
    });
  });

  it('logs requests that reach neither API, saying which API was expected, and WebSocket upgrades as such', async () => {
    await untilLoggedInFull(logs, 'https.unrouted');
    const stray = await rawRequest(emulator, { method: 'GET', path: '/jobs/v2/job-1?api-version=2021-04-12' });
    expect(stray.status).toBe(404);
    expect((stray.json as Json).message).toMatch(
      /Neither DPS API has a resource at \/jobs\/v2\/job-1: the device API serves .*; the service API serves/,
    );
    expect(logs.findLast((l) => l.event === 'https.unrouted')).toMatchObject({
      method: 'GET',
      path: '/jobs/v2/job-1',
      status: 404,
    });

    await untilLoggedInFull(logs, 'https.unrouted');
    const wrongMethod = await rawRequest(emulator, {
      method: 'PATCH',
      path: '/enrollmentGroups/g1?api-version=2021-10-01',
    });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers['x-ms-error-code']).toBe('405001');
    expect(logs.findLast((l) => l.event === 'https.unrouted')).toMatchObject({ method: 'PATCH', status: 405 });

    await untilLoggedInFull(logs, 'https.websocket');
    const upgrade = await rawRequest(emulator, {
      method: 'GET',
      path: '/$iothub/other-websocket',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Protocol': 'mqtt',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    expect(upgrade.status).toBe(400);
    expect(logs.findLast((l) => l.event === 'https.websocket')).toMatchObject({
      path: '/$iothub/other-websocket',
      subprotocol: 'mqtt',
    });
    expect((upgrade.json as Json).message).toMatch(/served at \/\$iothub\/websocket/);

    // A query's values (a token's sig=, a function key's code=) never reach the log: it is masked.
    const secret = 'c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ';
    await untilLoggedInFull(logs, 'https.websocket');
    await untilLoggedInFull(logs, 'https.unrouted');
    const withQuery = await rawRequest(emulator, {
      method: 'GET',
      path: `/$iothub/other-websocket?sig=${secret}&code=${secret}`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    expect(withQuery.status).toBe(400);
    const badUrl = await rawRequest(emulator, { method: 'GET', path: `//[/x?sig=${secret}` });
    expect(badUrl.status).toBe(404);
    expect(logs.findLast((l) => l.event === 'https.websocket')).toMatchObject({
      path: '/$iothub/other-websocket?****',
    });
    expect(logs.findLast((l) => l.event === 'https.unrouted')).toMatchObject({ path: '//[/x?****' });
    expect(JSON.stringify(logs)).not.toContain(secret);
    // Still serving.
    expect(body(await client.getEnrollmentGroup('hashed-group')).enrollmentGroupId).toBe('hashed-group');
  });

  describe('bounds on what a client sends (issue 8)', () => {
    const token = () =>
      createSasToken({
        resource: 'localhost',
        key: emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
        keyName: 'provisioningserviceowner',
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      });
    const send = (method: string, path: string, text: string, headers: Record<string, string> = {}) =>
      rawRequest(emulator, {
        method,
        path: `${path}${path.includes('?') ? '&' : '?'}api-version=2021-10-01`,
        headers: { Authorization: token(), ...headers },
        body: text,
      });
    const nested = (depth: number, inner: string) => `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
    const expectRefused = (answer: RawResponse, message: RegExp | string) => {
      expect(answer.status, answer.text).toBe(400);
      expect(answer.headers['x-ms-error-code']).toBe('400004');
      expect(answer.json).toMatchObject({ errorCode: 400004, message: expect.stringMatching(message) });
    };
    const escapeRegExp = (text: string) => text.replace(/[[\]().*+?^$|{}\\]/g, '\\$&');
    /** Each [method, path, body, field] answered 400004 `Invalid {field}: {cause}`. */
    const expectEachRefused = async (cases: Array<[string, string, string, string]>, cause: string) => {
      for (const [method, path, text, field] of cases) {
        expectRefused(
          await send(method, path, text),
          new RegExp(`^Invalid ${escapeRegExp(field)}: ${escapeRegExp(cause)}`),
        );
      }
    };
    /** A group PUT as `text` is taken, and its `field` reads back as `expected`. */
    const expectGroupStored = async (id: string, text: string, field: string, expected: unknown) => {
      const answer = await send('PUT', `/enrollmentGroups/${id}`, text);
      expect(answer.status, answer.text).toBe(200);
      expect(body(await client.getEnrollmentGroup(id))[field]).toEqual(expected);
      await client.deleteEnrollmentGroup(id);
    };
    const expectNotStored = async (groups: string[], individuals: string[]) => {
      for (const id of groups) expect((await sdkFailure(client.getEnrollmentGroup(id))).status).toBe(404);
      for (const id of individuals) expect((await sdkFailure(client.getIndividualEnrollment(id))).status).toBe(404);
    };

    it('refuses bodies nested too deep (an enrollment, its initialTwin, a bulk operation, a query) with 400004', async () => {
      const group = (initialTwin: string) =>
        `{"enrollmentGroupId":"deep-group","attestation":{"type":"symmetricKey"},"initialTwin":${initialTwin}}`;
      // 40,000 levels in 240 KB: within the body limit; JSON.parse copes, everything after it recursed.
      const cases: Array<[string, string, string]> = [
        ['PUT', '/enrollmentGroups/deep-group', nested(40_000, '1')],
        ['PUT', '/enrollmentGroups/deep-group', group(`{"tags":${nested(70, '1')}}`)],
        ['PUT', '/enrollments/deep-device', `{"registrationId":"deep-device","capabilities":${nested(100, '{}')}}`],
        ['POST', '/enrollments/', `{"mode":"create","enrollments":[${nested(65, '[]')}]}`],
        ['POST', '/enrollmentGroups/query', `{"query":"*","x":${nested(65, '0')}}`],
        ['POST', '/registrations/hashed-group/query', `{"query":"*","x":${nested(65, '0')}}`],
      ];
      for (const [method, path, text] of cases) {
        expectRefused(
          await send(method, path, text),
          /^The request body is not valid JSON: it is nested more than 64 levels deep\.$/,
        );
      }
      // At the bound it is accepted: 64 levels in all, in a field of its own (unknown fields round-trip;
      // a twin stops at IoT Hub's 10 levels).
      const atBound = await send(
        'PUT',
        '/enrollmentGroups/deep-group',
        `{"enrollmentGroupId":"deep-group","attestation":{"type":"symmetricKey"},"x":${nested(63, '1')}}`,
      );
      expect(atBound.status, atBound.text).toBe(200);
      await client.deleteEnrollmentGroup('deep-group');
    });

    it('refuses a body over 1 MiB with 400004 and closes that connection', async () => {
      const answer = await send('PUT', '/enrollmentGroups/big-group', `{"x":"${'a'.repeat(1024 * 1024)}"}`);
      expectRefused(answer, 'The request body is larger than 1048576 bytes.');
      expect(answer.headers.connection).toBe('close');
    });

    it('bounds what it echoes: long ids, modes, queries, page sizes and continuation tokens come back clipped', async () => {
      // Within the 16 KiB of request line and headers for what travels there (path, continuation).
      const long = 'x'.repeat(5_000);
      // The lines these requests log (a registration's line carries its initialTwin, up to IoT Hub's 40 KB).
      const logsBefore = logs.length;
      const answers = [
        await send('POST', '/enrollments/', JSON.stringify({ mode: long, enrollments: [] })),
        await send('POST', '/enrollmentGroups/query', JSON.stringify({ query: `* WHERE ${long}` })),
        await send('POST', '/enrollmentGroups/query', '{"query":"*"}', { 'x-ms-continuation': long }),
        await send(
          'PUT',
          `/enrollments/other-id`,
          JSON.stringify({ registrationId: long, attestation: { type: 'symmetricKey' } }),
        ),
      ];
      for (const answer of answers) {
        expectRefused(answer, /more characters\)/);
        expect(answer.text.length).toBeLessThan(1000);
      }
      const bulk = await send(
        'POST',
        '/enrollments/',
        JSON.stringify({ mode: 'delete', enrollments: [{ registrationId: long }] }),
      );
      expect(bulk.status).toBe(200);
      expect(bulk.text.length).toBeLessThan(1000);
      const tooMany = await send(
        'POST',
        '/enrollments/',
        JSON.stringify({
          mode: 'create',
          enrollments: Array.from({ length: 11 }, (_, i) => ({
            registrationId: `bulk-${i}`,
            attestation: { type: 'symmetricKey' },
          })),
        }),
      );
      expectRefused(tooMany, 'a bulk operation takes at most 10 enrollments, not 11');
      await untilLoggedInFull(logs, 'https.unrouted');
      const unrouted = await send('GET', `/enrollmentGroups/${long}/${long.slice(0, 4000)}`, '');
      expect(unrouted.status).toBe(404);
      expect(unrouted.text.length).toBeLessThan(1000);
      expect(logs.findLast((l) => l.event === 'https.unrouted')?.path).toMatch(/more characters\)$/);
      expect(Math.max(...logs.slice(logsBefore).map((l) => JSON.stringify(l).length))).toBeLessThan(4000);
    });

    it('refuses an api-version that is no version with 400004, and takes dated ones', async () => {
      const get = (query: string) =>
        rawRequest(emulator, {
          method: 'GET',
          path: `/enrollmentGroups/hashed-group?${query}`,
          headers: { Authorization: token() },
        });
      const refused: Array<[string, string]> = [
        ['api-version=garbage', 'garbage'],
        ['api-version=2021-10-01x', '2021-10-01x'],
        ['api-version=2021-10-01%0D%0ALocation:%20x', '2021-10-01\\u000d\\u000aLocation: x'],
        [`api-version=${'9'.repeat(3000)}`, `${'9'.repeat(128)}…(2872 more characters)`],
      ];
      for (const [query, shown] of refused) {
        const answer = await get(query);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.headers['x-ms-error-code']).toBe('400004');
        expect(answer.json).toMatchObject({
          errorCode: 400004,
          message: `Unknown api version "${shown}": give a dated version such as 2021-10-01.`,
        });
      }
      for (const version of ['2021-10-01', '2019-03-31', '2025-07-01-preview']) {
        const answer = await get(`api-version=${version}`);
        expect(answer.status, `${version}: ${answer.text}`).toBe(200);
      }
    });

    it('refuses a body whose Content-Type is not JSON with 415 415001, and takes the JSON ones clients send', async () => {
      const group = (id: string) => JSON.stringify({ enrollmentGroupId: id, attestation: { type: 'symmetricKey' } });
      const refused: Array<[string, RegExp]> = [
        ['text/plain', /^Unsupported media type "text\/plain": the DPS service API takes JSON bodies/],
        ['application/x-www-form-urlencoded', /^Unsupported media type "application\/x-www-form-urlencoded"/],
        ['application/json; charset=iso-8859-1', /reads JSON in UTF-8 only/],
        ['application/jsonx', /^Unsupported media type "application\/jsonx"/],
      ];
      for (const [contentType, message] of refused) {
        const answer = await send('PUT', '/enrollmentGroups/media-group', group('media-group'), {
          'Content-Type': contentType,
        });
        expect(answer.status, `${contentType}: ${answer.text}`).toBe(415);
        expect(answer.headers['x-ms-error-code']).toBe('415001');
        expect(answer.json).toMatchObject({
          errorCode: 415001,
          message: expect.stringMatching(message),
          trackingId: expect.any(String),
          timestampUtc: expect.stringMatching(DPS_TIMESTAMP_PATTERN),
        });
      }
      const query = await send('POST', '/enrollmentGroups/query', '{"query":"*"}', { 'Content-Type': 'text/plain' });
      expect(query.status, query.text).toBe(415);
      expect((await sdkFailure(client.getEnrollmentGroup('media-group'))).status).toBe(404); // nothing written
      // What the official clients send (Node/C/C#/Python: with charset; Java: without), JSON's other
      // media types, and an empty one are taken.
      const taken = [
        'application/json; charset=utf-8',
        'application/json',
        'Application/JSON;Charset="UTF-8"',
        'text/json',
        'application/merge-patch+json',
        '',
      ];
      for (const [i, contentType] of taken.entries()) {
        const answer = await send('PUT', `/enrollmentGroups/media-group-${i}`, group(`media-group-${i}`), {
          'Content-Type': contentType,
        });
        expect(answer.status, `${contentType}: ${answer.text}`).toBe(200);
        await client.deleteEnrollmentGroup(`media-group-${i}`);
      }
      // A body-less request is not asked for a Content-Type (the C SDK sends one with GET).
      const get = await send('GET', '/enrollmentGroups/hashed-group', '', { 'Content-Type': 'text/plain' });
      expect(get.status, get.text).toBe(200);
    });

    it('refuses a key named __proto__ anywhere in a body with 400004 naming it (it was dropped, answered 200)', async () => {
      // Through the official SDK: JSON.parse makes __proto__ an own key, which JSON.stringify sends.
      const enrollment = JSON.parse(
        '{"enrollmentGroupId":"proto-group","attestation":{"type":"symmetricKey"},"__proto__":{"polluted":true}}',
      );
      const failure = await sdkFailure(client.createOrUpdateEnrollmentGroup(enrollment));
      expect(failure).toMatchObject({
        status: 400,
        name: 'ArgumentError',
        body: {
          errorCode: 400004,
          message:
            'Invalid __proto__: a key named "__proto__" is not accepted (JavaScript takes it for the object\'s prototype: it would be dropped, not stored).',
        },
      });
      const cases: Array<[string, string, string, string]> = [
        [
          'PUT',
          '/enrollmentGroups/proto-group',
          '{"enrollmentGroupId":"proto-group","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"__proto__":{"a":1}}}}',
          'initialTwin.tags.__proto__',
        ],
        [
          'PUT',
          '/enrollments/proto-device',
          '{"registrationId":"proto-device","attestation":{"type":"symmetricKey"},"optionalDeviceInformation":{"__proto__":1}}',
          'optionalDeviceInformation.__proto__',
        ],
        [
          'POST',
          '/enrollments/',
          '{"mode":"create","enrollments":[{"registrationId":"proto-bulk","attestation":{"type":"symmetricKey"},"x":[{"__proto__":null}]}]}',
          'enrollments[0].x[0].__proto__',
        ],
      ];
      await expectEachRefused(cases, 'a key named "__proto__" is not accepted');
      await expectNotStored(['proto-group'], ['proto-device', 'proto-bulk']);
      // The word as a value, or inside a longer key, is ordinary.
      await expectGroupStored(
        'proto-ok',
        '{"enrollmentGroupId":"proto-ok","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"x__proto__":"__proto__"}}}',
        'initialTwin',
        { tags: { x__proto__: '__proto__' } },
      );
    });

    it('refuses a number past a double (1e400) anywhere in a body with 400004 naming it (it was stored as null)', async () => {
      const cases: Array<[string, string, string, string]> = [
        [
          'PUT',
          '/enrollmentGroups/huge-group',
          '{"enrollmentGroupId":"huge-group","attestation":{"type":"symmetricKey"},"custom":{"limit":1e400}}',
          'custom.limit',
        ],
        [
          'PUT',
          '/enrollments/huge-device',
          '{"registrationId":"huge-device","attestation":{"type":"symmetricKey"},"optionalDeviceInformation":{"ranges":[1,-1e999]}}',
          'optionalDeviceInformation.ranges[1]',
        ],
        [
          'PUT',
          '/enrollmentGroups/huge-group',
          '{"enrollmentGroupId":"huge-group","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"t":1e400}}}',
          'initialTwin.tags.t',
        ],
        [
          'POST',
          '/enrollments/',
          '{"mode":"create","enrollments":[{"registrationId":"huge-bulk","attestation":{"type":"symmetricKey"},"n":1e309}]}',
          'enrollments[0].n',
        ],
        ['POST', '/enrollmentGroups/query', '{"query":"*","x":1e400}', 'x'],
      ];
      await expectEachRefused(
        cases,
        'the number is beyond the range of a double (±1.8e308): it would be stored as null.',
      );
      await expectNotStored(['huge-group'], ['huge-device', 'huge-bulk']);
      // The largest double and numbers written long are ordinary numbers: stored as sent.
      await expectGroupStored(
        'huge-ok',
        '{"enrollmentGroupId":"huge-ok","attestation":{"type":"symmetricKey"},"custom":{"max":1.7976931348623157e308,"small":1e-400}}',
        'custom',
        { max: 1.7976931348623157e308, small: 0 },
      );
    });

    it("refuses an initialTwin integer outside IoT Hub's range (-2^52..2^52-1) with 400004 naming it (it was stored, rounded past 2^53)", async () => {
      const outside = "is outside IoT Hub's integer range (-4503599627370496 to 4503599627370495).";
      // Through the official SDK (it JSON.stringifies: 2^60 goes as 1152921504606847000, -2^52-1 exactly).
      for (const [initialTwin, field, literal] of [
        [{ tags: { serial: 2 ** 60 } }, 'tags.serial', '1152921504606847000'],
        [
          { properties: { desired: { limits: [1, -(2 ** 52) - 1] } } },
          'properties.desired.limits[1]',
          '-4503599627370497',
        ],
      ] as const) {
        const failure = await sdkFailure(
          client.createOrUpdateEnrollmentGroup({
            enrollmentGroupId: 'int-group',
            attestation: { type: 'symmetricKey' },
            initialTwin,
          } as never),
        );
        expect(failure).toMatchObject({
          status: 400,
          name: 'ArgumentError',
          body: { errorCode: 400004, message: `Invalid initialTwin.${field}: ${literal} ${outside}` },
        });
      }
      // Raw: a literal past 2^53 (JSON.parse reads 9007199254740993 as ...992), a bulk item's twin.
      const cases: Array<[string, string, string, string]> = [
        [
          'PUT',
          '/enrollments/int-device',
          '{"registrationId":"int-device","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"a":{"b":9007199254740993}}}}',
          'initialTwin.tags.a.b',
        ],
        [
          'PUT',
          '/enrollmentGroups/int-group',
          '{"enrollmentGroupId":"int-group","attestation":{"type":"symmetricKey"},"initialTwin":{"properties":{"desired":{"n":4503599627370496}}}}',
          'initialTwin.properties.desired.n',
        ],
        [
          'POST',
          '/enrollments/',
          '{"mode":"create","enrollments":[{"registrationId":"int-ok"},{"registrationId":"int-bulk","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"n":-99999999999999999999}}}]}',
          'enrollments[1].initialTwin.tags.n',
        ],
      ];
      for (const [method, path, text, field] of cases) {
        const literal = /-?\d{16,}/.exec(text)?.[0];
        expectRefused(
          await send(method, path, text),
          new RegExp(`^${escapeRegExp(`Invalid ${field}: ${literal} ${outside}`)}$`),
        );
      }
      await expectNotStored(['int-group'], ['int-device', 'int-bulk', 'int-ok']);
      // The range's ends, floats (unbounded: `1e21`, `4503599627370496.0`) and integers outside a
      // twin are taken as sent.
      await expectGroupStored(
        'int-ok',
        '{"enrollmentGroupId":"int-ok","attestation":{"type":"symmetricKey"},"custom":{"n":9007199254740993},"initialTwin":{"tags":{"max":4503599627370495,"min":-4503599627370496,"f":1e21,"g":4503599627370496.0}}}',
        'initialTwin',
        { tags: { max: 4503599627370495, min: -4503599627370496, f: 1e21, g: 4503599627370496 } },
      );
    });

    it('answers a request without a valid token 401 before reading its body, and closes', async () => {
      const endpoint = emulator.endpoints.https;
      // A second after the last refusal logged in full, so that this one is logged in full too.
      const last = logs.findLast((l) => l.event === 'service.auth' && l.reason !== undefined);
      const wait = last ? Date.parse(last.time) + 1000 - Date.now() : 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      // Headers announcing 1 MiB, and no body: before, the server waited for it (408 after the
      // idle timeout), and buffered it whole for anyone who sent it.
      const answer = await new Promise<{ status: number; connection: unknown; text: string }>((resolve, reject) => {
        const req = https.request({
          host: 'localhost',
          port: endpoint?.port,
          method: 'PUT',
          path: '/enrollmentGroups/unauthorized-group?api-version=2021-10-01',
          ca: emulator.caCertPem,
          agent: false,
          headers: { 'Content-Type': 'application/json', 'Content-Length': 1024 * 1024 },
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              connection: res.headers.connection,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      expect(answer).toMatchObject({ status: 401, connection: 'close' });
      expect(JSON.parse(answer.text)).toMatchObject({ errorCode: 401002, message: 'Unauthorized' });
      expect(logs.findLast((l) => l.event === 'service.auth')).toMatchObject({
        method: 'PUT',
        path: '/enrollmentGroups/unauthorized-group',
        reason: 'missing-token',
      });
    });

    it('keeps serving both APIs afterwards', async () => {
      expect(body(await client.getEnrollmentGroup('hashed-group')).enrollmentGroupId).toBe('hashed-group');
      const mechanism = body<{ symmetricKey: { primaryKey: string } }>(
        await client.getEnrollmentGroupAttestationMechanism('hashed-group'),
      );
      const deviceKey = deriveDeviceKey(mechanism.symmetricKey.primaryKey, 'after-bounds-device');
      expect(await register(emulator, 'after-bounds-device', deviceKey)).toMatchObject({ status: 'assigned' });
    });
  });

  it('keeps enrollments created through the API and their registrations across a restart', async () => {
    const groupId = 'restart-group';
    const created = body(
      await client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: groupId,
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'hashed',
      } as never),
    );
    const keys = body<{ symmetricKey: { primaryKey: string } }>(
      await client.getEnrollmentGroupAttestationMechanism(groupId),
    );
    const device = await register(
      emulator,
      'restart-device',
      deriveDeviceKey(keys.symmetricKey.primaryKey, 'restart-device'),
    );

    await emulator.stop();
    await start();

    const { attestation: _a, ...record } = created;
    expect(body(await client.getEnrollmentGroup(groupId))).toMatchObject(record);
    const { symmetricKey: _s, ...state } = device as Json;
    expect(body(await client.getDeviceRegistrationState('restart-device'))).toEqual(state);
    expect(
      await register(emulator, 'restart-device', deriveDeviceKey(keys.symmetricKey.primaryKey, 'restart-device')),
    ).toMatchObject({
      status: 'assigned',
      assignedHub: device.assignedHub,
    });
  });
});
