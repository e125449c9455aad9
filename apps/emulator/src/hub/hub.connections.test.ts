// When IoT Hub ends a device's connection, seen through the official SDKs (azure-iothub's Registry,
// azure-iot-device over MQTT, azure-iot-provisioning-device for re-provisioning): a device disabled
// or moved away while connected loses its connection, and a device id connected twice keeps only
// its newer connection (azure-docs iot-mqtt-connect-to-iot-hub: "IoT Hub only supports one active
// MQTT connection per device. Any new MQTT connection on behalf of the same device ID causes IoT Hub
// to drop the existing connection").
import { generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, HUB_B } from '../testing/fixtures.js';
import { moduleClient } from '../testing/hub-module-sdk.js';
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

// The hub's `disconnected` event tells that it closed the connection: the SDK client itself reports
// nothing while no feature of it is subscribed (its client drops a retryable transport disconnect
// silently and reconnects at its next operation).
const disconnectedFrom = (hub: string, deviceId: string) => (e: HubEvent) =>
  e.kind === 'disconnected' && e.deviceId === deviceId && e.hub.toLowerCase() === hub.toLowerCase();

/** A retry policy that never retries (azure-iot-common's NoRetry, which azure-iot-device does not export). */
const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => -1 };

/**
 * Creates or updates the individual enrollment `id` (symmetric key `key`) to assign its device to
 * `hub` alone; a registration after a change of hub moves the device there (re-provisioning with
 * its data).
 */
async function enrollOn(id: string, key: string, hub: string): Promise<void> {
  const service = serviceClient(bed.emulator);
  const existing = await service.getIndividualEnrollment(id).catch(() => undefined);
  await service.createOrUpdateIndividualEnrollment({
    registrationId: id,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    allocationPolicy: 'static',
    iotHubs: [hub],
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    ...(existing ? { etag: (existing.responseBody as { etag: string }).etag } : {}),
  } as never);
}

const createDevice = (deviceId: string) => createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);

describe('the hub ends device connections as IoT Hub does', () => {
  it('a device disabled through the registry loses its connection; it is refused until enabled again', async () => {
    const id = 'conn-disabled';
    const key = await createDevice(id);
    const registry = registryClient(bed.emulator, HUB_A);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const closed = nextHubEvent(bed.emulator, disconnectedFrom(HUB_A, id));
      await registry.update({ deviceId: id, status: 'disabled' });
      await closed;
      expect((await registry.get(id)).responseBody).toMatchObject({
        status: 'disabled',
        connectionState: 'Disconnected',
      });
      await expectRefused(bed.emulator, { hub: HUB_A, deviceId: id, key }, 'device-disabled');

      await registry.update({ deviceId: id, status: 'enabled' });
      const again = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
      await again.open();
      await again.close();
    } finally {
      await client.close();
    }
  });

  it('a device re-provisioned to another hub loses its connection to the old one, not on a re-provisioning to the same hub', async () => {
    const id = 'conn-moved';
    const key = generateSymmetricKey();
    const enroll = (hub: string) => enrollOn(id, key, hub);
    await enroll(HUB_A);
    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A });
    const closes: HubEvent[] = [];
    const recordCloses = (event: HubEvent) => {
      if (disconnectedFrom(HUB_A, id)(event)) closes.push(event);
    };
    bed.emulator.on('hub', recordCloses);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      // Re-registering to the same hub keeps the identity, and the connection.
      expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A });
      await client.getTwin();
      expect(closes).toEqual([]);

      const closed = nextHubEvent(bed.emulator, disconnectedFrom(HUB_A, id));
      await enroll(HUB_B);
      expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_B });
      await closed;
      await expectRefused(bed.emulator, { hub: HUB_A, deviceId: id, key }, 'device-not-found');
    } finally {
      bed.emulator.off('hub', recordCloses);
      await client.close();
    }
  });

  it("a device re-provisioned to another hub: its modules' identities go with it from the old hub, and so do their connections", async () => {
    const id = 'conn-moved-modules';
    const key = generateSymmetricKey();
    await enrollOn(id, key, HUB_A);
    expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_A });
    const registry = registryClient(bed.emulator, HUB_A);
    const added = (await registry.addModule({ deviceId: id, moduleId: 'm' })).responseBody;
    const module = await moduleClient(bed.emulator, {
      hub: HUB_A,
      deviceId: id,
      moduleId: 'm',
      key: added.authentication?.symmetricKey?.primaryKey ?? '',
    });
    await module.open();
    try {
      const closed = nextHubEvent(
        bed.emulator,
        (e) => disconnectedFrom(HUB_A, id)(e) && e.kind === 'disconnected' && e.moduleId === 'm',
      );
      await enrollOn(id, key, HUB_B);
      expect(await register(bed.emulator, id, key)).toMatchObject({ assignedHub: HUB_B });
      await closed;
      expect(bed.emulator.hubModules(id, HUB_A)).toEqual([]);
    } finally {
      await module.close();
    }
  });

  it('a device id connected twice keeps only the newer connection, which the registry shows connected', async () => {
    const id = 'conn-twice';
    const key = await createDevice(id);
    const first = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    const second = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await first.open();
    try {
      const closed = nextHubEvent(bed.emulator, disconnectedFrom(HUB_A, id));
      await second.open();
      await closed;
      // The newer connection works and is the one the registry describes.
      await second.getTwin();
      expect((await registryClient(bed.emulator, HUB_A).get(id)).responseBody.connectionState).toBe('Connected');
    } finally {
      await Promise.allSettled([first.close(), second.close()]);
    }
  });

  // One connection per device whatever the transport: the newer stays (MQTT and AMQP alike; the
  // older's SDK client reports 'disconnect': its retry policy never retries here, else an MQTT client
  // reconnects at once and becomes the newer in turn, as against IoT Hub).
  it.each([
    ['amqp', 'mqtt'],
    ['mqtt', 'amqp'],
    ['amqp', 'amqp'],
    ['amqp-ws', 'amqp'],
  ] as const)('a device connected over %s, then over %s, keeps only the newer connection', async (older, newer) => {
    const id = `conn-${older}-${newer}`;
    const key = await createDevice(id);
    const first = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: older });
    first.setRetryPolicy(noRetry);
    const second = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: newer });
    await first.open();
    try {
      const firstDisconnected = new Promise<{ transportObj?: Error & { amqpError?: { condition?: string } } }>(
        (resolve) => first.once('disconnect', resolve),
      );
      const closed = nextHubEvent(bed.emulator, disconnectedFrom(HUB_A, id));
      await second.open();
      await closed;
      // What the older device's SDK reports: over AMQP the hub's CLOSE (its sessions ended first, so
      // azure-iot-amqp-base does not wait 45 s to run the connection down), over MQTT the socket closed.
      const { transportObj } = await firstDisconnected;
      if (older === 'mqtt') expect(transportObj?.name).toBe('NotConnectedError');
      else {
        expect(transportObj?.name).toBe('UnauthorizedError');
        expect(transportObj?.amqpError?.condition).toBe('amqp:unauthorized-access');
      }
      // The newer connection works and is the one the registry describes.
      await second.getTwin();
      expect((await registryClient(bed.emulator, HUB_A).get(id)).responseBody.connectionState).toBe('Connected');
    } finally {
      await Promise.allSettled([first.close(), second.close()]);
    }
  });
});
