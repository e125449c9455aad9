import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, HUB_B } from '../testing/fixtures.js';
import { registryClient } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// azure-iothub's Registry.list() (GET /devices) and getRegistryStatistics() (GET /statistics/devices)
// against the emulated hubs, with the official SDK.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

describe('Registry.list and Registry.getRegistryStatistics', () => {
  it('lists the hub devices in device id order and counts them, enabled and disabled', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    for (const deviceId of ['list-c', 'list-a', 'list-b']) await registry.create({ deviceId });
    await registry.update({ deviceId: 'list-b', status: 'disabled' });

    const listed = (await registry.list()).responseBody;
    expect(listed.map((d) => d.deviceId)).toEqual(['list-a', 'list-b', 'list-c']);
    expect(listed[1]).toMatchObject({ deviceId: 'list-b', status: 'disabled', authentication: { type: 'sas' } });
    // The same device document as Registry.get answers.
    expect(JSON.parse(JSON.stringify(listed[0]))).toEqual(
      JSON.parse(JSON.stringify((await registry.get('list-a')).responseBody)),
    );

    const { responseBody: statistics } = await registry.getRegistryStatistics();
    expect(statistics).toEqual({ totalDeviceCount: 3, enabledDeviceCount: 2, disabledDeviceCount: 1 });
    // Another hub's devices are its own.
    const other = await registryClient(bed.emulator, HUB_A).getRegistryStatistics();
    expect(other.responseBody.totalDeviceCount).not.toBe(3);
  });

  it('takes top from 1 to 1000 (any other whole number is 1000, as IoT Hub), refuses one that is no number, and checks the credentials first', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    for (const deviceId of ['top-1', 'top-2', 'top-3']) await registry.create({ deviceId });
    const list = (query: string, token = registryToken(HUB_B)) =>
      rawRequest(bed.emulator, {
        method: 'GET',
        path: `/devices?api-version=2021-04-12${query}`,
        headers: { Host: HUB_B, Authorization: token },
      });
    const ids = (json: unknown) => (json as { deviceId: string }[]).map((d) => d.deviceId);
    const two = await list('&top=2');
    expect(two.status).toBe(200);
    expect(ids(two.json)).toHaveLength(2);
    const all = ids((await list('')).json);
    expect(all).toEqual(expect.arrayContaining(['top-1', 'top-2', 'top-3']));
    for (const outside of ['0', '-5', '1001']) expect(ids((await list(`&top=${outside}`)).json)).toEqual(all);
    const words = await list('&top=many');
    expect(words.status).toBe(400);
    expect(words.headers['iothub-errorcode']).toBe('ArgumentInvalid');
    expect((words.json as { Message: string }).Message).toMatch(
      /^ErrorCode:ArgumentInvalid;top must be a whole number/,
    );
    const refused = await list('&top=many', registryToken(HUB_A));
    expect(refused.status).toBe(401);
    const put = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: '/devices?api-version=2021-04-12',
      headers: { Host: HUB_B, Authorization: registryToken(HUB_B) },
    });
    expect(put.status).toBe(405);
    const statistics = await rawRequest(bed.emulator, {
      method: 'GET',
      path: '/statistics/devices?api-version=2021-04-12',
      headers: { Host: HUB_B, Authorization: registryToken(HUB_A) },
    });
    expect(statistics.status).toBe(401);
  });
});
