import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_B } from '../testing/fixtures.js';
import { deviceClient, registryClient } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// azure-iothub's Registry.addDevices / updateDevices / removeDevices (POST /devices with importMode)
// against an emulated hub, with the official SDK: IoT Hub's BulkRegistryOperationResult.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

describe('bulk registry operations', () => {
  it('adds, updates and removes devices in bulk; a device that fails is an error of the result, the others are applied', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    const added = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2', status: 'disabled' }]);
    expect(added.responseBody).toEqual({ isSuccessful: true, errors: [], warnings: [] });
    const one = (await registry.get('bulk-1')).responseBody;
    expect(one.authentication?.symmetricKey?.primaryKey).toBeTruthy();
    expect((await registry.get('bulk-2')).responseBody.status).toBe('disabled');
    // The generated key is a working one.
    const client = await deviceClient(bed.emulator, {
      hub: HUB_B,
      deviceId: 'bulk-1',
      key: one.authentication?.symmetricKey?.primaryKey as string,
    });
    await client.open();
    await client.close();

    const again = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-3' }]);
    expect(again.responseBody).toMatchObject({
      isSuccessful: false,
      errors: [{ deviceId: 'bulk-1', errorCode: 'DeviceAlreadyExists' }],
      warnings: [],
    });
    expect((await registry.get('bulk-3')).responseBody.deviceId).toBe('bulk-3');

    // updateDevices(…, false): UpdateIfMatchETag with each device's etag.
    const stale = { ...one, status: 'disabled' as const };
    await registry.update({ deviceId: 'bulk-1', status: 'enabled' }); // moves its etag on
    const updated = await registry.updateDevices(
      [stale, { ...(await registry.get('bulk-3')).responseBody, status: 'disabled' }],
      false,
    );
    expect(updated.responseBody).toMatchObject({
      isSuccessful: false,
      errors: [{ deviceId: 'bulk-1', errorCode: 'PreconditionFailed' }],
    });
    expect((await registry.get('bulk-1')).responseBody.status).toBe('enabled');
    expect((await registry.get('bulk-3')).responseBody.status).toBe('disabled');
    // updateDevices(…, true): Update, whatever the etag.
    expect((await registry.updateDevices([stale], true)).responseBody.isSuccessful).toBe(true);
    expect((await registry.get('bulk-1')).responseBody.status).toBe('disabled');

    const removed = await registry.removeDevices(
      [{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }, { deviceId: 'bulk-none' }],
      true,
    );
    expect(removed.responseBody).toMatchObject({
      isSuccessful: false,
      errors: [{ deviceId: 'bulk-none', errorCode: 'DeviceNotFound' }],
    });
    await expect(registry.get('bulk-2')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    const three = (await registry.get('bulk-3')).responseBody;
    expect((await registry.removeDevices([{ ...three, etag: 'bm90IGl0' }], false)).responseBody).toMatchObject({
      errors: [{ deviceId: 'bulk-3', errorCode: 'PreconditionFailed' }],
    });
    expect((await registry.removeDevices([three], false)).responseBody.isSuccessful).toBe(true);
  });

  it('refuses an unreadable call as a whole, naming the field, after checking RegistryWrite from the headers', async () => {
    const bulk = (body: string, token = registryToken(HUB_B)) =>
      rawRequest(bed.emulator, {
        method: 'POST',
        path: '/devices?api-version=2021-04-12',
        headers: { Host: HUB_B, Authorization: token },
        body,
      });
    expect((await bulk('[', 'SharedAccessSignature sr=x&sig=y&se=1&skn=iothubowner')).status).toBe(401);
    const mode = await bulk('[{"id":"bulk-x","importMode":"updateTwin"}]');
    expect(mode.status).toBe(400);
    expect((mode.json as { Message: string }).Message).toMatch(
      /^ErrorCode:ArgumentInvalid;\[0\]\.importMode "updateTwin" is not served/,
    );
    const many = JSON.stringify(
      Array.from({ length: 101 }, (_, i) => ({ id: `bulk-many-${i}`, importMode: 'create' })),
    );
    const tooMany = await bulk(many);
    expect(tooMany.status).toBe(413);
    expect(tooMany.headers['iothub-errorcode']).toBe('TooManyDevices');
    const registry = registryClient(bed.emulator, HUB_B);
    await expect(registry.get('bulk-many-0')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    const badId = await bulk('[{"id":"no/slash","importMode":"create"}]');
    expect(badId.status).toBe(200);
    expect(badId.json).toMatchObject({
      isSuccessful: false,
      errors: [{ deviceId: 'no/slash', errorCode: 'ArgumentInvalid' }],
    });
  });
});
