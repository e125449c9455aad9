import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_B } from '../testing/fixtures.js';
import { registryClient } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// A device's cloudToDeviceMessageCount, as azure-iothub's Registry reads it: IoT Hub's "Number of
// cloud-to-device messages currently queued to be sent to the device" (REST API, Device). A backend
// checks its queue with Registry.get; the emulated hubs answered 0 whatever was queued.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

describe('cloudToDeviceMessageCount', () => {
  it('counts the queued messages in Registry.get, getTwin, list and twin queries, and drops to 0 when purged', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'count-a' });
    await registry.create({ deviceId: 'count-b' });
    bed.emulator.sendCloudToDevice('count-a', { body: 'one' }, HUB_B);
    bed.emulator.sendCloudToDevice('count-a', { body: 'two' }, HUB_B);

    expect((await registry.get('count-a')).responseBody.cloudToDeviceMessageCount).toBe(2);
    expect((await registry.get('count-b')).responseBody.cloudToDeviceMessageCount).toBe(0);
    // azure-iothub's Twin type leaves the field out; IoT Hub's twin JSON carries it.
    const twin = (await registry.getTwin('count-a')).responseBody as unknown as { cloudToDeviceMessageCount: number };
    expect(twin.cloudToDeviceMessageCount).toBe(2);
    const updated = (await registry.update({ deviceId: 'count-a', status: 'enabled' })).responseBody;
    expect(updated.cloudToDeviceMessageCount).toBe(2);
    const listed = (await registry.list()).responseBody;
    expect(listed.find((d) => d.deviceId === 'count-a')?.cloudToDeviceMessageCount).toBe(2);
    const query = registry.createQuery(
      "SELECT deviceId, cloudToDeviceMessageCount FROM devices WHERE STARTSWITH(deviceId, 'count-') AND cloudToDeviceMessageCount > 0",
    );
    expect((await query.next()).result).toEqual([{ deviceId: 'count-a', cloudToDeviceMessageCount: 2 }]);

    const purged = await rawRequest(bed.emulator, {
      method: 'DELETE',
      path: '/devices/count-a/commands?api-version=2021-04-12',
      headers: { Host: HUB_B, Authorization: registryToken(HUB_B) },
    });
    expect(purged.status).toBe(200);
    expect((await registry.get('count-a')).responseBody.cloudToDeviceMessageCount).toBe(0);
  });
});
