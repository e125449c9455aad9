// Device ids are case-sensitive in IoT Hub ("A case-sensitive string (up to 128 characters long)",
// azure-docs iot-hub-devguide-identity-registry; "Device ids were made case sensitive", the IoT Hub
// team in azure-iot-sdk-csharp#99), while DPS registration ids are not (azure-docs concepts-service:
// "a case-insensitive string"). Seen through the official SDKs: the registry, the twin, the device
// connections and DPS's assignment agree on the exact id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A, HUB_C } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, expectRefused, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { serviceClient } from '../testing/service-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import type { HubEvent } from './core/hub-service.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

const disconnectedFrom = (hub: string, deviceId: string) => (e: HubEvent) =>
  e.kind === 'disconnected' && e.deviceId === deviceId && e.hub.toLowerCase() === hub.toLowerCase();

describe('hub device ids are case-sensitive, as in IoT Hub', () => {
  it('Case-Dev and case-dev are two devices: their own keys, twin and connection; deleting one leaves the other', async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    const upperKey = await createDeviceKey(registry, 'Case-Dev');
    const lowerKey = await createDeviceKey(registry, 'case-dev');
    expect(lowerKey).not.toBe(upperKey);
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: 'case-dev', key: upperKey }, 'signature-mismatch');

    // Both connected at once: IoT Hub keeps one connection per device, and these are two devices.
    const upper = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: 'Case-Dev', key: upperKey });
    const lower = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: 'case-dev', key: lowerKey });
    await upper.open();
    await lower.open();
    try {
      const twin = await upper.getTwin();
      const pushed = new Promise<Record<string, unknown>>((resolve) =>
        twin.on('properties.desired', (desired: Record<string, unknown>) => {
          if (desired.color) resolve(desired);
        }),
      );
      await registry.updateTwin('Case-Dev', { properties: { desired: { color: 'red' } } }, '*');
      expect(await pushed).toMatchObject({ color: 'red' });
      expect((await registry.getTwin('case-dev')).responseBody.properties.desired).not.toHaveProperty('color');
      expect((await lower.getTwin()).properties.desired).not.toHaveProperty('color');

      const closed = nextHubEvent(bed.emulator, disconnectedFrom(HUB_A, 'case-dev'));
      await registry.delete('case-dev');
      await closed;
      expect((await registry.get('Case-Dev')).responseBody).toMatchObject({
        deviceId: 'Case-Dev',
        connectionState: 'Connected',
      });
      await expect(registry.get('case-dev')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
      // The connection of the device left is still served.
      expect((await upper.getTwin()).properties.desired).toMatchObject({ color: 'red' });
    } finally {
      await upper.close();
      await lower.close();
    }
  });

  it('a device id in another case than the identity is not that device', async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    const key = await createDeviceKey(registry, 'Only-Upper');
    await expect(registry.get('only-upper')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await expect(registry.updateTwin('ONLY-UPPER', { properties: { desired: { a: 1 } } }, '*')).rejects.toMatchObject({
      name: 'DeviceNotFoundError',
    });
    // Even with the identity's key (a token for the other case's resource, signed right).
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: 'only-upper', key }, 'device-not-found');
    await expectRefused(
      bed.emulator,
      { hub: HUB_A, deviceId: 'only-upper', key, transport: 'https' },
      'device-not-found',
    );
  });
});

describe('DPS creates the device id exactly as the registration id the device presented', () => {
  it('a registration in another case is the same registration; its device moves to the id it is told', async () => {
    const first = 'Case-Static-1';
    expect(await register(bed.emulator, first, groupDeviceKey('static', first))).toMatchObject({
      assignedHub: HUB_C,
      deviceId: first,
    });
    const registry = registryClient(bed.emulator, HUB_C);
    expect((await registry.get(first)).responseBody).toMatchObject({ deviceId: first });
    await expect(registry.get(first.toLowerCase())).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await registry.updateTwin(first, { properties: { desired: { mode: 'eco' } } }, '*');

    // The same device registering in lower case (with the key derived from that id, as the SDK's
    // group sample derives it) is the same DPS registration record...
    const second = first.toLowerCase();
    const key = groupDeviceKey('static', second);
    expect(await register(bed.emulator, second, key)).toMatchObject({ assignedHub: HUB_C, deviceId: second });
    const record = (await serviceClient(bed.emulator).getDeviceRegistrationState(first.toUpperCase())).responseBody;
    expect(record).toMatchObject({ deviceId: second, assignedHub: HUB_C });
    // ...and its hub identity is the one it was told, its twin carried over (migrateDeviceData).
    await expect(registry.get(first)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    expect((await registry.getTwin(second)).responseBody.properties.desired).toMatchObject({ mode: 'eco' });
    const client = await deviceClient(bed.emulator, { hub: HUB_C, deviceId: second, key });
    await client.open();
    try {
      expect((await client.getTwin()).properties.desired).toMatchObject({ mode: 'eco' });
    } finally {
      await client.close();
    }
  });
});
