// The QoS of the hub's MQTT deliveries, with mqtt.js (the MQTT client azure-iot-device-mqtt uses
// underneath) for the subscriptions the SDK never makes. IoT Hub grants at most QoS 1 ("When a
// device app subscribes to a topic with QoS 2, IoT Hub grants maximum QoS level 1 in the SUBACK
// packet", azure-docs iot-mqtt-connect-to-iot-hub), and MQTT 3.1.1 (3.8.4) delivers at most at the
// granted QoS: the emulated hub publishes its twin answers and desired pushes at QoS 0.
import { createSasToken } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { registryClient } from '../testing/hub-sdk.js';
import { connectRawDevice, type RawMqttDevice } from '../testing/raw-mqtt.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** A device token as the SDKs send it: `sr={hub}/devices/{id}`, no `skn`. */
function deviceToken(deviceId: string, key: string): string {
  const expiresAt = Math.floor(Date.now() / 1000) + 3600;
  return createSasToken({ resource: `${HUB_A}/devices/${deviceId}`, key, expiresAt, keyName: 'x' }).replace(
    /&skn=x/,
    '',
  );
}

function subscribe(device: RawMqttDevice, topic: string, qos: 0 | 1 | 2): Promise<number> {
  return new Promise((resolve, reject) =>
    device.client.subscribe(topic, { qos }, (err, granted) => (err ? reject(err) : resolve(granted[0]?.qos ?? -1))),
  );
}

/** The next message on a topic starting with `prefix`, with the QoS it was delivered at. */
function nextMessage(device: RawMqttDevice, prefix: string): Promise<{ topic: string; qos: number; body: string }> {
  return new Promise((resolve) => {
    const listener = (topic: string, payload: Buffer, packet: { qos: number }) => {
      if (!topic.startsWith(prefix)) return;
      device.client.removeListener('message', listener);
      resolve({ topic, qos: packet.qos, body: payload.toString('utf8') });
    };
    device.client.on('message', listener);
  });
}

/** A device created through the registry, connected as mqtt.js (its CONNECT as the SDK's). */
async function createAndConnect(registry: ReturnType<typeof registryClient>, id: string): Promise<RawMqttDevice> {
  const key = (await registry.create({ deviceId: id })).responseBody.authentication?.symmetricKey?.primaryKey as string;
  return connectRawDevice(bed.emulator, {
    clientId: id,
    username: `${HUB_A}/${id}/?api-version=2021-04-12`,
    password: deviceToken(id, key),
  });
}

describe('the hub over MQTT: granted and delivered QoS', () => {
  it('grants the QoS asked up to 1 and delivers twin answers and desired pushes at QoS 0', async () => {
    const id = 'qos-device';
    const registry = registryClient(bed.emulator, HUB_A);
    const device = await createAndConnect(registry, id);
    try {
      expect(await subscribe(device, '$iothub/twin/res/#', 0)).toBe(0);
      expect(await subscribe(device, '$iothub/twin/PATCH/properties/desired/#', 2)).toBe(1);
      expect(await subscribe(device, `devices/${id}/messages/devicebound/#`, 1)).toBe(1);

      const answer = nextMessage(device, '$iothub/twin/res/200/');
      device.client.publish('$iothub/twin/GET/?$rid=1', '', { qos: 0 });
      expect(await answer).toMatchObject({ topic: '$iothub/twin/res/200/?$rid=1', qos: 0 });

      const pushed = nextMessage(device, '$iothub/twin/PATCH/properties/desired/');
      await registry.updateTwin(id, { properties: { desired: { mode: 'eco' } } }, '*');
      const desired = await pushed;
      expect(desired.qos).toBe(0);
      expect(JSON.parse(desired.body)).toMatchObject({ mode: 'eco' });
    } finally {
      await device.end();
    }
  });
});

describe('the hub over MQTT: unsubscribing', () => {
  it('stops pushing desired properties to a device that unsubscribed from them (MQTT 3.1.1 3.10.4)', async () => {
    const id = 'unsubscribed-device';
    const registry = registryClient(bed.emulator, HUB_A);
    const device = await createAndConnect(registry, id);
    const topics: string[] = [];
    device.client.on('message', (topic: string) => topics.push(topic.replace(/\?.*$/, '')));
    try {
      await subscribe(device, '$iothub/twin/res/#', 0);
      await subscribe(device, '$iothub/twin/PATCH/properties/desired/#', 1);
      const pushed = nextMessage(device, '$iothub/twin/PATCH/properties/desired/');
      await registry.updateTwin(id, { properties: { desired: { mode: 'eco' } } }, '*');
      await pushed;
      await new Promise<void>((resolve, reject) =>
        device.client.unsubscribe('$iothub/twin/PATCH/properties/desired/#', (err?: Error) =>
          err ? reject(err) : resolve(),
        ),
      );
      await registry.updateTwin(id, { properties: { desired: { mode: 'boost' } } }, '*');
      // A push owed after the update would be written before the answer to a GET sent after it.
      const answer = nextMessage(device, '$iothub/twin/res/200/');
      device.client.publish('$iothub/twin/GET/?$rid=2', '', { qos: 0 });
      expect(JSON.parse((await answer).body)).toMatchObject({ desired: { mode: 'boost' } });
      expect(topics).toEqual(['$iothub/twin/PATCH/properties/desired/', '$iothub/twin/res/200/']);
    } finally {
      await device.end();
    }
  });
});
