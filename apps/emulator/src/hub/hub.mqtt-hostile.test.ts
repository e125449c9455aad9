// The hub's MQTT endpoint fed what a hostile or broken client writes and the SDK never does, as
// raw bytes over TLS: each is refused as IoT Hub refuses it (or as this hub documents where IoT
// Hub does not say), with one warning through the emulator's logger, and the hub goes on serving
// the official SDK.
import tls from 'node:tls';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Emulator } from '../emulator.js';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { logClock } from '../testing/log-clock.js';
import { DISCONNECT, hubConnect, PINGREQ, rawMqttConnection, SUBSCRIBE_TWIN } from '../testing/mqtt-bytes.js';
import { webSocketRoundTrip } from '../testing/raw-websocket.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_HUB_KEEPALIVE_SECONDS } from '../transport/mqtt.js';
import { MAX_UNSENT_PUSH_BYTES } from './mqtt.js';
import { DESIRED_FILTER, MAX_REQUEST_ID_LENGTH } from './mqtt-topics.js';

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;
const logs: LogRecord[] = [];

// Each test in a second of its own on the log's clock: the first warning of each kind it causes is
// logged in full (the listeners' warnings are limited to one line in full a second per kind).
const clock = logClock();
beforeEach(() => clock.nextSecond());

beforeAll(async () => {
  ({ emulator, close } = await startTestBedWithWebhook({ log: (record) => logs.push(record), logClock: clock.now }));
});

afterAll(() => close?.());

/** A device of HUB_A created through the registry: its key and its CONNECT as the SDK writes it. */
async function device(id: string): Promise<{ key: string; connect: Buffer }> {
  const key = await createDeviceKey(registryClient(emulator, HUB_A), id);
  return { key, connect: hubConnect({ hub: HUB_A, deviceId: id, key }) };
}

/** What arrived, one line a packet. */
function summary(packets: mqttPacket.Packet[]): string[] {
  return packets.map((packet) => {
    if (packet.cmd === 'connack') return `connack ${packet.returnCode}`;
    if (packet.cmd === 'suback') return `suback ${packet.messageId} ${packet.granted.join(',')}`;
    if ('messageId' in packet && packet.cmd !== 'publish') return `${packet.cmd} ${packet.messageId}`;
    if (packet.cmd === 'publish') return `publish ${packet.topic}`;
    return packet.cmd;
  });
}

/** The emulator's warnings and errors since `from`, as [level, event, message]. */
const warnings = (from: number) =>
  logs
    .slice(from)
    .filter((l) => l.level === 'warn' || l.level === 'error')
    .map((l) => [l.level, l.event, l.msg]);

/** The official SDK still connects, sends, reads and reports its twin as this device. */
async function stillServes(id: string, key: string): Promise<void> {
  const client = await deviceClient(emulator, { hub: HUB_A, deviceId: id, key });
  await client.open();
  try {
    await client.sendEvent(new Message('{"after":true}'));
    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ after: true }, (err?: Error) => (err ? reject(err) : resolve())),
    );
  } finally {
    await client.close();
  }
  expect(emulator.telemetry(HUB_A, id).map((m) => m.body.toString())).toContain('{"after":true}');
}

describe('the hub over MQTT: QoS 2', () => {
  it('closes the connection of a device that publishes at QoS 2, before storing or answering it, as IoT Hub does', async () => {
    // "IoT Hub doesn't support QoS 2 messages. If a device app publishes a message with QoS 2,
    // IoT Hub closes the network connection" (azure-docs iot-mqtt-connect-to-iot-hub). aedes would
    // answer PUBREC and keep the message until the PUBREL: up to 1000 of 256 KiB per connection.
    const publishes = {
      telemetry: (id: string) => `devices/${id}/messages/events/`,
      reported: () => '$iothub/twin/PATCH/properties/reported/?$rid=3',
    };
    for (const [name, topic] of Object.entries(publishes)) {
      // Each connection's warning logged in full: one in full a second of the log's clock.
      clock.nextSecond();
      const id = `qos2-${name}`;
      const { key, connect } = await device(id);
      const from = logs.length;
      const connection = rawMqttConnection(emulator);
      const qos2 = mqttPacket.generate({
        cmd: 'publish',
        topic: topic(id),
        payload: Buffer.from('{"qos":2}'),
        qos: 2,
        messageId: 3,
        retain: false,
        dup: false,
      });
      await connection.write(Buffer.concat([connect, SUBSCRIBE_TWIN, qos2, PINGREQ, DISCONNECT]));
      await connection.closed;
      expect({ name, received: summary(connection.received) }).toEqual({ name, received: ['connack 0', 'suback 1 0'] });
      expect(emulator.telemetry(HUB_A, id)).toEqual([]);
      const twin = await registryClient(emulator, HUB_A).getTwin(id);
      expect(twin.responseBody.properties.reported).not.toHaveProperty('qos');
      expect(warnings(from)).toEqual([
        [
          'warn',
          'hub.mqtt',
          `${id} on ${HUB_A}: a PUBLISH at QoS 2, which IoT Hub does not support; connection closed`,
        ],
      ]);
      await stillServes(id, key);
    }
  });
});

describe('the hub over MQTT: request ids', () => {
  it('answers a $rid of up to MAX_REQUEST_ID_LENGTH characters and closes the connection of one longer, before answering it', async () => {
    // The answer echoes the $rid, percent-encoded, in its topic (at most 65,535 bytes). A $rid of
    // 20,000 '€' (60,000 bytes in the request's topic) is 180,000 bytes encoded: mqtt-packet wrote
    // the answer's fixed header and stopped at its topic length, so the device got a PUBLISH
    // announcing 180 KB followed by the next answers' bytes, and no warning said why.
    const id = 'long-rid';
    const { key, connect } = await device(id);
    const twinGet = (rid: string) =>
      mqttPacket.generate({
        cmd: 'publish',
        topic: `$iothub/twin/GET/?$rid=${rid}`,
        payload: Buffer.alloc(0),
        qos: 0,
        retain: false,
        dup: false,
      });
    const longest = '€'.repeat(MAX_REQUEST_ID_LENGTH);
    const from = logs.length;
    const connection = rawMqttConnection(emulator);
    await connection.write(
      Buffer.concat([connect, SUBSCRIBE_TWIN, twinGet(longest), twinGet('€'.repeat(20_000)), PINGREQ, DISCONNECT]),
    );
    await connection.closed;
    const answer = `$iothub/twin/res/200/?$rid=${encodeURIComponent(longest)}`;
    expect(summary(connection.received)).toEqual(['connack 0', 'suback 1 0', `publish ${answer}`]);
    // Nothing but these three packets: no answer cut short.
    const whole = connection.received.map((packet) => mqttPacket.generate(packet).length);
    expect(connection.receivedBytes()).toBe(whole.reduce((a, b) => a + b, 0));
    expect(warnings(from)).toEqual([
      [
        'warn',
        'hub.mqtt',
        `${id} on ${HUB_A}: a $rid of 20000 characters, over ${MAX_REQUEST_ID_LENGTH}; connection closed`,
      ],
    ]);
    await stillServes(id, key);
  });
});

describe('the hub over MQTT: keepalive', () => {
  it('closes a silent device after 1.5 × its keepalive, at most 1767 s however long a keepalive it asked for, as IoT Hub does', async () => {
    // "IoT Hub's keep-alive ping interval is 1.5 times the client keep-alive value. However, IoT
    // Hub limits the maximum server-side timeout to 29.45 minutes (1767 seconds)" (azure-docs
    // iot-mqtt-connect-to-iot-hub). A keepalive of 65,535 s kept a silent connection 27 hours.
    // Timers faked from before the CONNECT (aedes's keepalive timer), I/O real.
    const id = 'keepalive-max';
    const key = await createDeviceKey(registryClient(emulator, HUB_A), id);
    const connection = rawMqttConnection(emulator);
    let closed = false;
    void connection.closed.then(() => {
      closed = true;
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await connection.write(hubConnect({ hub: HUB_A, deviceId: id, key, keepalive: 65_535 }));
      await connection.packets(1);
      // aedes closes 1.5 × keepalive + 1 ms after the last packet.
      vi.advanceTimersByTime(MAX_HUB_KEEPALIVE_SECONDS * 1500);
      await webSocketRoundTrip(emulator);
      const openAt1767s = !closed;
      vi.advanceTimersByTime(1);
      await Promise.race([connection.closed, webSocketRoundTrip(emulator).then(() => webSocketRoundTrip(emulator))]);
      expect({ openAt1767s, closedAfter: closed, received: summary(connection.received) }).toEqual({
        openAt1767s: true,
        closedAfter: true,
        received: ['connack 0'],
      });
    } finally {
      vi.useRealTimers();
    }
    expect(MAX_HUB_KEEPALIVE_SECONDS * 1.5).toBe(1767);
  });
});

describe('the hub over MQTT: a device that does not read', () => {
  it('closes the connection of a device that leaves its desired-property pushes unread past MAX_UNSENT_PUSH_BYTES', async () => {
    // Pushes are sent when the registry changes the twin, whether the device reads or not: with
    // its socket paused, the old code queued every push (2,000 of 30 KB held +58 MB in a scratch
    // run) for as long as the connection lasted. A device that reads gets every push (hub.sdk).
    const id = 'unread-pushes';
    const registry = registryClient(emulator, HUB_A);
    const key = await createDeviceKey(registry, id);
    const socket = tls.connect({ host: 'localhost', port: emulator.endpoints.mqtt.port, ca: emulator.caCertPem });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const connected = nextHubEvent(emulator, (e) => e.kind === 'connected' && e.deviceId === id);
    const subscribe = mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: DESIRED_FILTER, qos: 0 }],
    });
    socket.write(Buffer.concat([hubConnect({ hub: HUB_A, deviceId: id, key }), subscribe]));
    await connected;
    // CONNACK and SUBACK arrive; then the device reads no more.
    await new Promise<void>((resolve) => {
      let bytes = 0;
      const take = (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes < 9) return;
        socket.off('data', take);
        socket.pause();
        resolve();
      };
      socket.on('data', take);
    });
    const from = logs.length;
    let disconnected = false;
    void nextHubEvent(emulator, (e) => e.kind === 'disconnected' && e.deviceId === id).then(() => {
      disconnected = true;
    });
    // Eight strings of 3,750 (a twin string is at most 4 KB): 30 KB a push.
    const desired = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`part${i}`, 'x'.repeat(3750)]));
    let pushes = 0;
    // 2,000 pushes of 30 KB: 60 MB, far more than the kernel's socket buffers and the bound.
    while (!disconnected && pushes < 2000) {
      await registry.updateTwin(id, { properties: { desired: { ...desired, n: ++pushes } } }, '*');
    }
    socket.destroy();
    expect({ disconnected, warnings: warnings(from) }).toEqual({
      disconnected: true,
      warnings: [
        [
          'warn',
          'hub.mqtt',
          `${id} on ${HUB_A}: over ${MAX_UNSENT_PUSH_BYTES} bytes of desired-property pushes left unread; connection closed`,
        ],
      ],
    });
    await stillServes(id, key);
  });
});

describe('the hub over MQTT: wills', () => {
  it('forwards a will on the telemetry topic as telemetry and drops one on any other topic at the CONNECT, with a warning', async () => {
    // "The device app can also use devices/{device_id}/messages/events/{property_bag} as the Will
    // topic name to define Will messages to be forwarded as a telemetry message" (azure-docs
    // iot-mqtt-connect-to-iot-hub); no other will is documented. aedes publishes a will through the
    // hub's authorizePublish when the connection drops: one on the reported-properties topic
    // patched the twin then.
    const connectWith = (id: string, key: string, will: mqttPacket.IConnectPacket['will']) => {
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let connect: mqttPacket.IConnectPacket | undefined;
      parser.on('packet', (packet) => {
        connect = packet as mqttPacket.IConnectPacket;
      });
      parser.parse(hubConnect({ hub: HUB_A, deviceId: id, key }));
      return mqttPacket.generate({ ...(connect as mqttPacket.IConnectPacket), will });
    };
    const drop = async (id: string, connect: Buffer) => {
      const disconnected = nextHubEvent(emulator, (e) => e.kind === 'disconnected' && e.deviceId === id);
      const socket = tls.connect({ host: 'localhost', port: emulator.endpoints.mqtt.port, ca: emulator.caCertPem });
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      const connack = new Promise((resolve) => socket.once('data', resolve));
      socket.write(connect);
      await connack;
      socket.destroy(); // no DISCONNECT: the will is due
      await disconnected;
    };

    const telemetryId = 'will-telemetry';
    const telemetryKey = await createDeviceKey(registryClient(emulator, HUB_A), telemetryId);
    const stored = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === telemetryId);
    await drop(
      telemetryId,
      connectWith(telemetryId, telemetryKey, {
        topic: `devices/${telemetryId}/messages/events/reason=gone`,
        payload: Buffer.from('bye'),
        qos: 1,
        retain: false,
      }),
    );
    expect(await stored).toMatchObject({ body: 'bye', properties: { reason: 'gone' } });

    const id = 'will-twin';
    const key = await createDeviceKey(registryClient(emulator, HUB_A), id);
    const from = logs.length;
    await drop(
      id,
      connectWith(id, key, {
        topic: '$iothub/twin/PATCH/properties/reported/?$rid=9',
        payload: Buffer.from('{"willed":1}'),
        qos: 0,
        retain: false,
      }),
    );
    const twin = await registryClient(emulator, HUB_A).getTwin(id);
    expect(twin.responseBody.properties.reported).not.toHaveProperty('willed');
    expect(warnings(from)).toEqual([
      [
        'warn',
        'hub.mqtt',
        `${id} on ${HUB_A}: a will on $iothub/twin/PATCH/properties/reported/?$rid=9, not devices/${id}/messages/events/ (the only will IoT Hub forwards); the will is dropped`,
      ],
    ]);
    await stillServes(id, key);
  });
});
