// Cloud-to-device messages over MQTT past the connection's unsent-bytes bound: the hub stops
// writing once MAX_UNSENT_PUSH_BYTES wait in the connection's buffers and goes on when they are
// written. At QoS 0 no PUBACK asks for the next message, so the socket's drain must: a full queue
// of large messages all arrives, none left Enqueued until some later send. A raw MQTT client
// subscribes at QoS 0 (azure-iot-device-mqtt always asks QoS 1). No wall-clock assertions: the
// test waits for the packets (its own timeout bounds it).
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, registryClient } from '../testing/hub-sdk.js';
import { DISCONNECT, hubConnect, rawMqttConnection } from '../testing/mqtt-bytes.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_C2D_MESSAGE_BYTES, MAX_C2D_QUEUE_DEPTH } from './core/c2d.js';
import { MAX_UNSENT_PUSH_BYTES } from './mqtt.js';

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

it('sends a whole queue of large messages at QoS 0, going on as the connection drains', async () => {
  const id = 'c2d-mqtt-qos0-drain';
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const size = MAX_C2D_MESSAGE_BYTES - 1024;
  // More than the bound holds: the first write leaves the rest in the connection's buffer.
  expect(size * MAX_C2D_QUEUE_DEPTH).toBeGreaterThan(2 * MAX_UNSENT_PUSH_BYTES);
  for (let i = 0; i < MAX_C2D_QUEUE_DEPTH; i++) {
    bed.emulator.sendCloudToDevice(id, { body: Buffer.alloc(size, i), messageId: `m${i}` });
  }
  const device = rawMqttConnection(bed.emulator);
  await device.write(
    Buffer.concat([
      hubConnect({ hub: HUB_A, deviceId: id, key }),
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: `devices/${id}/messages/devicebound/#`, qos: 0 }],
      }),
    ]),
  );
  // CONNACK, SUBACK, then every message of the queue, in order, at QoS 0.
  await device.packets(2 + MAX_C2D_QUEUE_DEPTH);
  const messages = device.received.slice(2) as mqttPacket.IPublishPacket[];
  expect(messages.map((m) => [m.qos, m.payload.length, m.payload[0]])).toEqual(
    Array.from({ length: MAX_C2D_QUEUE_DEPTH }, (_, i) => [0, size, i]),
  );
  // At QoS 0 a message written is completed: the queue is empty.
  expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
  await device.write(DISCONNECT);
  await device.closed;
});
