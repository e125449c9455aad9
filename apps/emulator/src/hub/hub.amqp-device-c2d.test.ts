// A cloud-to-device message queued for a device connected over AMQP (azure-iot-device-amqp) leaves
// its connection alone: the push that tells the device's connection a message waits is not one of
// those that end it (deleted, disabled, connected again elsewhere). The message stays queued for
// the device. No timing is asserted: the test waits for a telemetry round trip on the connection.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import type { HubEvent } from './core/hub-service.js';

let bed: TestBedWithWebhook;
const events: HubEvent[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
  bed.emulator.on('hub', (event) => events.push(event));
});
afterAll(async () => {
  await bed?.close();
});

it('keeps an AMQP device connected when a cloud-to-device message is queued for it', async () => {
  const id = 'amqp-c2d-stays';
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
  const sdkDisconnects: unknown[] = [];
  client.on('disconnect', (reason: unknown) => sdkDisconnects.push(reason));
  await client.open();
  try {
    // The device's links are attached as it uses them: its telemetry link first.
    await client.sendEvent(new Message('hello'));
    bed.emulator.sendCloudToDevice(id, { body: 'for later', messageId: 'c2d-1' });
    // A round trip on the device's connection after the push: a closed connection would have
    // ended (the hub's disconnected event, written as the socket closes) before it completes.
    const stored = nextHubEvent(
      bed.emulator,
      (e) => e.kind === 'telemetry' && e.deviceId === id && bed.emulator.telemetry(HUB_A, id).length === 2,
    );
    await client.sendEvent(new Message('still here'));
    await stored;
    const hubEvents = events.filter((e) => 'deviceId' in e && e.deviceId === id).map((e) => e.kind);
    expect(hubEvents).not.toContain('disconnected');
    expect(sdkDisconnects).toEqual([]);
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ messageId: 'c2d-1' }]);
  } finally {
    await client.close();
  }
});
