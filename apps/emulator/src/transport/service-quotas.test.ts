// The enrollment quotas (limits.maxIndividualEnrollments, limits.maxEnrollmentGroups) through the
// official, unmodified `azure-iot-provisioning-service` SDK, against a real emulator (real TLS,
// its SQLite store), whose config file's enrollments count toward them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import {
  closedPortUrl,
  startTestEmulator,
  tempStateDir,
  testConfig,
  testEmulatorOptions,
} from '../testing/fixtures.js';
import { type ServiceClient, sdkFailure, serviceClient } from '../testing/service-sdk.js';

describe('enrollment quotas', () => {
  let emulator: Emulator;
  let client: ServiceClient;
  let state: ReturnType<typeof tempStateDir>;
  const config = { individual: 0, groups: 0 };

  beforeAll(async () => {
    state = tempStateDir();
    const file = testConfig(await closedPortUrl(), await closedPortUrl());
    // Every enrollment of the test config uses a symmetric key: one more of each fits.
    config.individual = file.individualEnrollments?.length ?? 0;
    config.groups = file.enrollmentGroups?.length ?? 0;
    expect(
      [...(file.individualEnrollments ?? []), ...(file.enrollmentGroups ?? [])].every(
        (e) => e.attestation?.type === 'symmetricKey',
      ),
    ).toBe(true);
    ({ emulator } = await startTestEmulator(
      testEmulatorOptions(file, state.path, {
        limits: { maxIndividualEnrollments: config.individual + 1, maxEnrollmentGroups: config.groups + 1 },
      }),
    ));
    client = serviceClient(emulator);
  });

  afterAll(async () => {
    await emulator?.stop();
    state?.remove();
  });

  it('creates up to the quota, then answers 403 403001 (TooManyDevicesError in the SDK); room again after a delete', async () => {
    const individual = (id: string) => ({ registrationId: id, attestation: { type: 'symmetricKey' } }) as never;
    const group = (id: string) => ({ enrollmentGroupId: id, attestation: { type: 'symmetricKey' } }) as never;
    await client.createOrUpdateIndividualEnrollment(individual('quota-device-1'));
    await client.createOrUpdateEnrollmentGroup(group('quota-group-1'));

    expect(await sdkFailure(client.createOrUpdateIndividualEnrollment(individual('quota-device-2')))).toMatchObject({
      status: 403,
      name: 'TooManyDevicesError',
      body: {
        errorCode: 403001,
        message: `The provisioning service has ${config.individual + 1} individual enrollments, its quota (limits.maxIndividualEnrollments, CLI --max-individual-enrollments; DPS allows 1,000,000): delete one first.`,
      },
    });
    expect(await sdkFailure(client.createOrUpdateEnrollmentGroup(group('quota-group-2')))).toMatchObject({
      status: 403,
      body: {
        errorCode: 403001,
        message: `The provisioning service has ${config.groups + 1} enrollment groups with symmetricKey attestation, its quota (limits.maxEnrollmentGroups, CLI --max-enrollment-groups, per attestation type; DPS allows 100): delete one first.`,
      },
    });
    // The SDK's promise form of runBulkEnrollmentOperation never settles (its own bug): the callback.
    const bulk = await new Promise((resolve, reject) =>
      client.runBulkEnrollmentOperation(
        { mode: 'create', enrollments: [individual('quota-device-2')] } as never,
        (err, result) => (err ? reject(err) : resolve(result)),
      ),
    );
    expect(bulk).toMatchObject({
      isSuccessful: false,
      errors: [{ registrationId: 'quota-device-2', errorCode: 403001 }],
    });
    expect((await sdkFailure(client.getIndividualEnrollment('quota-device-2'))).status).toBe(404);

    // An update at the quota is no creation.
    const current = (await client.getIndividualEnrollment('quota-device-1')).responseBody;
    await client.createOrUpdateIndividualEnrollment({ ...current, deviceId: 'quota-device-1-renamed' } as never);

    await client.deleteIndividualEnrollment('quota-device-1');
    await client.createOrUpdateIndividualEnrollment(individual('quota-device-2'));
    expect((await client.getIndividualEnrollment('quota-device-2')).responseBody).toMatchObject({
      registrationId: 'quota-device-2',
    });
  });

  it('refuses quotas that are no whole number >= 1 when the emulator is created', async () => {
    const file = testConfig(await closedPortUrl(), await closedPortUrl());
    for (const limits of [{ maxIndividualEnrollments: 0 }, { maxEnrollmentGroups: 1.5 }]) {
      await expect(startTestEmulator(testEmulatorOptions(file, state.path, { limits }))).rejects.toThrow(
        /^limits\.max(IndividualEnrollments|EnrollmentGroups) must be a whole number >= 1/,
      );
    }
  });
});
