// Re-provisioning as DPS documents it (azure-docs concepts-device-reprovision), seen through the
// official SDKs: the device re-registers, the registry shows where its identity and twin went.
import { generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, HUB_B } from '../testing/fixtures.js';
import { deviceClient, expectRefused, registryClient } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { serviceClient } from '../testing/service-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

const initialTwin = { tags: { model: 'toaster-2000' }, properties: { desired: { temperature: 180 } } };

/** An individual enrollment on `hub` with the given reprovision policy, through the service SDK. */
async function enroll(registrationId: string, key: string, hub: string, migrateDeviceData: boolean) {
  const client = serviceClient(bed.emulator);
  const existing = await client.getIndividualEnrollment(registrationId).catch(() => undefined);
  await client.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    allocationPolicy: 'static',
    iotHubs: [hub],
    initialTwin,
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData },
    ...(existing ? { etag: (existing.responseBody as { etag: string }).etag } : {}),
  } as never);
}

/** Connects with the device SDK over MQTT and reports `reported`. */
async function report(hub: string, deviceId: string, key: string, reported: Record<string, unknown>) {
  const client = await deviceClient(bed.emulator, { hub, deviceId, key });
  await client.open();
  try {
    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update(reported, (err?: Error) => (err ? reject(err) : resolve())),
    );
  } finally {
    await client.close();
  }
}

describe('re-provisioning moves or resets the device in its hubs', () => {
  it('migrateDeviceData true: the identity and twin (reported included) move to the new hub', async () => {
    const id = 'reprov-migrate';
    const key = generateSymmetricKey();
    await enroll(id, key, HUB_A, true);
    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A, substatus: 'initialAssignment' });
    await report(HUB_A, id, key, { firmware: '2.0' });

    await enroll(id, key, HUB_B, true);
    expect(await register(bed.emulator, id, key)).toMatchObject({
      assignedHub: HUB_B,
      substatus: 'deviceDataMigrated',
    });
    const twin = (await registryClient(bed.emulator, HUB_B).getTwin(id)).responseBody;
    expect(twin.tags).toEqual(initialTwin.tags);
    expect(twin.properties.reported).toMatchObject({ firmware: '2.0' });
    await expect(registryClient(bed.emulator, HUB_A).getTwin(id)).rejects.toMatchObject({
      name: 'DeviceNotFoundError',
    });
    // The device follows: the old hub refuses it, the new one serves the migrated twin.
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: id, key }, 'device-not-found');
    const client = await deviceClient(bed.emulator, { hub: HUB_B, deviceId: id, key });
    await client.open();
    expect((await client.getTwin()).properties.reported).toMatchObject({ firmware: '2.0' });
    await client.close();
  });

  it('migrateDeviceData false: the twin resets to the initial twin, on the same hub and on a new one', async () => {
    const id = 'reprov-reset';
    const key = generateSymmetricKey();
    await enroll(id, key, HUB_A, false);
    await register(bed.emulator, id, key);
    await report(HUB_A, id, key, { firmware: '2.0' });
    const registry = registryClient(bed.emulator, HUB_A);
    const before = (await registry.getTwin(id)).responseBody;
    await registry.updateTwin(
      id,
      { tags: { site: 'lab' }, properties: { desired: { temperature: 220 } } },
      before.etag,
    );

    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A, substatus: 'deviceDataReset' });
    const reset = (await registry.getTwin(id)).responseBody;
    expect(reset.tags).toEqual(initialTwin.tags);
    expect(reset.properties.desired).toMatchObject({ temperature: 180 });
    expect(reset.properties.reported).not.toHaveProperty('firmware');
    const version = (twin: object) => (twin as { version: number }).version;
    expect(version(reset)).toBeGreaterThan(version(before));

    await enroll(id, key, HUB_B, false);
    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_B, substatus: 'deviceDataReset' });
    expect((await registryClient(bed.emulator, HUB_B).getTwin(id)).responseBody.tags).toEqual(initialTwin.tags);
    await expect(registry.get(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('a device deleted from its hub comes back with the initial twin on its next registration (migrateDeviceData true)', async () => {
    const id = 'reprov-deleted';
    const key = generateSymmetricKey();
    await enroll(id, key, HUB_A, true);
    await register(bed.emulator, id, key);
    const registry = registryClient(bed.emulator, HUB_A);
    await registry.delete(id);
    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A });
    const twin = (await registry.getTwin(id)).responseBody;
    expect(twin.tags).toEqual(initialTwin.tags);
    expect(twin.properties.desired).toMatchObject(initialTwin.properties.desired);
  });
});
