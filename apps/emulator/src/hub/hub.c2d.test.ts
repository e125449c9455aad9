// Cloud-to-device messages with the official device packages: azure-iot-device's Client over MQTT
// (azure-iot-device-mqtt: the message arrives on devices/{id}/messages/devicebound/…, its PUBACK
// completes it) and over HTTPS (azure-iot-device-http polls GET …/messages/deviceBound and completes,
// rejects or abandons with its lock token), and a raw MQTT client for what the SDK does not show (a
// message left unacknowledged, sent again on the next connection). Messages are queued with the
// emulator's sendCloudToDevice. No wall-clock assertions: the tests wait for events.
import type { IncomingMessage } from 'node:http';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { c2dEvent as c2dEventOf, c2dOutcomes, propertiesOf, type SdkMessage } from '../testing/c2d.js';
import { HUB_A } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  type HubDeviceTransport,
  registryClient,
} from '../testing/hub-sdk.js';
import { DISCONNECT, hubConnect, rawMqttConnection } from '../testing/mqtt-bytes.js';
import { hubDeviceToken, rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { C2dError, MAX_C2D_QUEUE_DEPTH } from './core/c2d.js';
import type { HubEvent } from './core/hub-service.js';

let bed: TestBedWithWebhook;
const events: HubEvent[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
  bed.emulator.on('hub', (event) => {
    if (event.kind === 'c2d') events.push(event);
  });
});
afterAll(async () => {
  await bed?.close();
});

async function newDevice(id: string): Promise<string> {
  return createDeviceKey(registryClient(bed.emulator, HUB_A), id);
}

async function connected(id: string, key: string, transport: HubDeviceTransport): Promise<DeviceClient> {
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport });
  await client.open();
  return client;
}

/** The next message the SDK client emits. */
function nextMessage(client: DeviceClient): Promise<SdkMessage> {
  return new Promise((resolve) => client.once('message', resolve));
}

function c2dEvent(deviceId: string, outcome: string): Promise<HubEvent> {
  return c2dEventOf(bed.emulator, deviceId, outcome);
}

function outcomes(deviceId: string): string[] {
  return c2dOutcomes(events, deviceId);
}

/** Resolves once `done()` holds, checking every 20 ms (no deadline: the test's own timeout bounds it). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('cloud-to-device messages over MQTT (azure-iot-device-mqtt)', () => {
  it('delivers a queued message with its properties; the PUBACK completes it', async () => {
    const id = 'c2d-mqtt-1';
    const key = await newDevice(id);
    bed.emulator.sendCloudToDevice(id, {
      body: 'toast: 3 slices',
      messageId: 'msg-1',
      correlationId: 'corr-1',
      contentType: 'text/plain',
      properties: { color: 'golden', level: '3' },
    });
    const client = await connected(id, key, 'mqtt');
    try {
      const completed = c2dEvent(id, 'completed');
      // Queued before the device listened: sent once it subscribes.
      const message = await nextMessage(client);
      expect(message.data.toString()).toBe('toast: 3 slices');
      expect(message.messageId).toBe('msg-1');
      expect(message.correlationId).toBe('corr-1');
      expect(message.to).toBe(`/devices/${id}/messages/devicebound`);
      expect(message.contentType).toBe('text/plain');
      expect(propertiesOf(message)).toEqual({ color: 'golden', level: '3', 'iothub-ack': 'none' });
      await client.complete(message);
      expect(await completed).toMatchObject({ transport: 'mqtt', messageId: 'msg-1', bytes: 15 });
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
      expect(outcomes(id)).toEqual(['enqueued', 'delivered', 'completed']);

      // One sent while the device listens arrives at once.
      const next = nextMessage(client);
      bed.emulator.sendCloudToDevice(id, { body: Buffer.from([1, 2, 3]) });
      expect([...(await next).data]).toEqual([1, 2, 3]);
      await until(() => bed.emulator.cloudToDeviceQueue(id).length === 0);
    } finally {
      await client.close();
    }
  });

  it('sends an unacknowledged message again on the next connection, and completes it on its PUBACK', async () => {
    const id = 'c2d-mqtt-raw';
    const key = await newDevice(id);
    bed.emulator.sendCloudToDevice(id, { body: 'again', messageId: 'unacked' });
    const subscribe = mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: `devices/${id}/messages/devicebound/#`, qos: 1 }],
    });

    const first = rawMqttConnection(bed.emulator);
    await first.write(Buffer.concat([hubConnect({ hub: HUB_A, deviceId: id, key }), subscribe]));
    await first.packets(3); // CONNACK, SUBACK, PUBLISH
    const sent = first.received[2];
    expect(sent).toMatchObject({ cmd: 'publish', qos: 1, payload: Buffer.from('again') });
    expect((sent as mqttPacket.IPublishPacket).topic).toBe(
      `devices/${id}/messages/devicebound/%24.mid=unacked&%24.to=%2Fdevices%2F${id}%2Fmessages%2Fdevicebound&iothub-ack=none`,
    );
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Invisible', deliveryCount: 0 }]);
    // Gone without a PUBACK: the message is Enqueued again.
    const released = c2dEvent(id, 'released');
    await first.write(DISCONNECT);
    await first.closed;
    await released;
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Enqueued', deliveryCount: 0 }]);

    const second = rawMqttConnection(bed.emulator);
    await second.write(Buffer.concat([hubConnect({ hub: HUB_A, deviceId: id, key }), subscribe]));
    await second.packets(3);
    const again = second.received[2] as mqttPacket.IPublishPacket;
    expect(again.payload.toString()).toBe('again');
    const completed = c2dEvent(id, 'completed');
    await second.write(mqttPacket.generate({ cmd: 'puback', messageId: again.messageId ?? 0 }));
    await completed;
    expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    await second.write(DISCONNECT);
    await second.closed;
  });
});

describe('cloud-to-device messages over HTTPS (azure-iot-device-http)', () => {
  it('receives by polling and completes, rejects and abandons with the lock token', async () => {
    const id = 'c2d-https-1';
    const key = await newDevice(id);
    const client = await connected(id, key, 'https');
    try {
      const first = nextMessage(client);
      bed.emulator.sendCloudToDevice(id, { body: 'one', messageId: 'm1', properties: { k: 'v' } });
      const one = await first;
      expect(one.data.toString()).toBe('one');
      expect(one.messageId).toBe('m1');
      expect(one.to).toBe(`/devices/${id}/messages/devicebound`);
      expect(typeof one.lockToken).toBe('string');
      // azure-iot-device-http keeps the header's prefix in the property's name.
      expect(propertiesOf(one)).toMatchObject({ 'iothub-app-k': 'v' });
      expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Invisible' }]);
      const result = await client.complete(one);
      expect(result.constructor.name).toBe('MessageCompleted');
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);

      // Completing it again: its lock is gone, 412 DeviceMessageLockLost (412002).
      const lost = await client.complete(one).then(
        () => undefined,
        (err: Error & { response?: IncomingMessage; responseBody?: string }) => err,
      );
      expect(lost?.response?.statusCode).toBe(412);
      expect(lost?.response?.headers['iothub-errorcode']).toBe('DeviceMessageLockLost');
      expect(lost?.responseBody).toMatch(/^\{"Message":"ErrorCode:DeviceMessageLockLost;/);

      const second = nextMessage(client);
      bed.emulator.sendCloudToDevice(id, { body: 'two', messageId: 'm2' });
      const two = await second;
      const abandoned = c2dEvent(id, 'abandoned');
      const redelivered = nextMessage(client);
      await client.abandon(two);
      expect(await abandoned).toMatchObject({ transport: 'https', deliveryCount: 1 });
      const twoAgain = await redelivered;
      expect(twoAgain.messageId).toBe('m2');
      expect(twoAgain.lockToken).not.toBe(two.lockToken);
      const rejected = c2dEvent(id, 'rejected');
      await client.reject(twoAgain);
      await rejected;
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

describe("IoT Hub's refusals and bounds", () => {
  it('refuses a device not in the registry, a full queue, and drops the queue with the device', async () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as Error & { status?: number; code?: string };
      }
      throw new Error('accepted');
    };
    expect(refusal(() => bed.emulator.sendCloudToDevice('c2d-nobody', { body: 'x' }))).toMatchObject({
      status: 404,
      code: 'DeviceNotFound',
    });
    const id = 'c2d-full';
    await newDevice(id);
    for (let i = 0; i < MAX_C2D_QUEUE_DEPTH; i++) bed.emulator.sendCloudToDevice(id, { body: `m${i}` });
    const full = refusal(() => bed.emulator.sendCloudToDevice(id, { body: 'one too many' }));
    expect(full).toBeInstanceOf(C2dError);
    expect(full).toMatchObject({ status: 403, errorCode: 403004 });
    expect(bed.emulator.cloudToDeviceQueue(id)).toHaveLength(MAX_C2D_QUEUE_DEPTH);
    await registryClient(bed.emulator, HUB_A).delete(id);
    await newDevice(id);
    expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
  });

  it('purges a queue (DELETE /devices/{id}/commands, ServiceConnect), as the C# ServiceClient and az CLI do', async () => {
    const id = 'c2d-purge';
    const key = await newDevice(id);
    bed.emulator.sendCloudToDevice(id, { body: 'a' });
    bed.emulator.sendCloudToDevice(id, { body: 'b' });
    const purge = (deviceId: string, authorization: string) =>
      rawRequest(bed.emulator, {
        method: 'DELETE',
        path: `/devices/${deviceId}/commands?api-version=2021-04-12`,
        headers: { Host: HUB_A, Authorization: authorization },
      });
    const purged = await purge(id, registryToken(HUB_A));
    expect([purged.status, purged.json]).toEqual([200, { totalMessagesPurged: 2, deviceId: id }]);
    expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    expect(outcomes(id)).toEqual(['enqueued', 'enqueued', 'purged', 'purged']);
    expect((await purge(id, registryToken(HUB_A))).json).toEqual({ totalMessagesPurged: 0, deviceId: id });
    const nobody = await purge('c2d-nobody', registryToken(HUB_A));
    expect([nobody.status, nobody.headers['iothub-errorcode']]).toEqual([404, 'DeviceNotFound']);
    // A device's own token holds no ServiceConnect.
    expect((await purge(id, hubDeviceToken(HUB_A, id, key))).status).toBe(401);
  });
});
