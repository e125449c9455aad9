// Floods of what each listener warns about once per connection (or, on DPS's MQTT, once per packet):
// refused connections anyone can open without a credential, and what an authenticated device can
// repeat. The log stays bounded, at most one line in full per kind per second of the log's clock
// (which the test moves) and few count lines; the counts add up to exactly what was sent; and the
// listener still serves an SDK device afterwards. Each test has an emulator of its own: its stop
// logs the counts still held.
import net from 'node:net';
import { createRegistrationSasToken, generateSymmetricKey } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterEach, expect, it } from 'vitest';
import type { LimitedKind } from './core/limited-warnings.js';
import { REFUSAL_LIMITED_WARNINGS } from './emulator.js';
import type { HubEvent } from './hub/core/hub-service.js';
import { HUB_MQTT_LIMITED_WARNINGS } from './hub/mqtt.js';
import { groupDeviceKey, HUB_A } from './testing/fixtures.js';
import { createDeviceKey, deviceClient, Message, registryClient } from './testing/hub-sdk.js';
import { type LogClock, logClock, tally } from './testing/log-clock.js';
import { dpsUsername, hubConnect, PINGREQ, rawMqttConnection } from './testing/mqtt-bytes.js';
import { plainTcpToAmqpPort, rawAmqpExchange, rawTlsExchange } from './testing/raw-amqp.js';
import { closeOf, openMqttWebSocket, openWebSocket } from './testing/raw-websocket.js';
import { register } from './testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from './testing/test-bed.js';
import { AMQP_LIMITED_WARNINGS } from './transport/amqp.js';
import { MQTT_LIMITED_WARNINGS } from './transport/mqtt.js';
import { MAX_REQUEST_ID_LENGTH } from './transport/mqtt-topics.js';
import { WEBSOCKET_LIMITED_WARNINGS } from './transport/websocket.js';

interface FloodBed {
  bed: TestBedWithWebhook;
  logs: LogRecord[];
  clock: LogClock;
  /** Runs `send` once in each of `seconds` seconds of the log's clock; resolves with the wall time it took (ms). */
  flood(seconds: number, send: () => Promise<unknown>): Promise<number>;
}

let running: TestBedWithWebhook | undefined;
// A test that failed before its own close() leaves no emulator running.
afterEach(() => running?.close());

async function floodBed(): Promise<FloodBed> {
  const logs: LogRecord[] = [];
  const clock = logClock();
  const started = await startTestBedWithWebhook({ log: (record) => logs.push(record), logClock: clock.now });
  let closed = false;
  const bed: TestBedWithWebhook = {
    ...started,
    async close() {
      if (closed) return;
      closed = true;
      await started.close();
    },
  };
  running = bed;
  return {
    bed,
    logs,
    clock,
    async flood(seconds, send) {
      const started = performance.now();
      for (let s = 0; s < seconds; s++) {
        clock.nextSecond();
        await send();
      }
      return performance.now() - started;
    },
  };
}

/**
 * The warn lines of `event` since the emulator started, checked against what was sent: every
 * warning logged in full or counted, by key exactly `sent`; at most one line in full per second
 * of the log's clock; and count lines at most one before each line in full, one at the stop, and
 * one per second of wall time the flood took (the limiter's timer logs what it holds a second
 * after the first held, on the wall clock, which this test does not move).
 */
function expectBounded(
  logs: readonly LogRecord[],
  event: string,
  kind: LimitedKind | undefined,
  sent: Record<string, number>,
  bound: { seconds: number; wallMs: number },
): void {
  if (!kind) throw new Error(`${event} is not limited`);
  const lines = logs.filter((l) => l.event === event && l.level === 'warn');
  const { full, counted, byKey } = tally(lines, kind);
  expect({ event, byKey }).toEqual({ event, byKey: sent });
  expect(full.length).toBeLessThanOrEqual(bound.seconds);
  expect(counted.length).toBeLessThanOrEqual(full.length + 1 + Math.ceil(bound.wallMs / 1000));
  // A count line says what was held and nothing the clients sent.
  for (const line of counted) expect(Object.keys(line).sort()).toEqual(countLineFields(kind));
}

function countLineFields(kind: LimitedKind): string[] {
  return ['level', 'time', 'event', 'msg', 'suppressed', 'reasons', ...Object.keys(kind.fields ?? {})].sort();
}

const times = <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> =>
  Promise.all(Array.from({ length: n }, (_, i) => make(i)));

/** Plain TCP (no TLS) to `port`: writes `bytes`, resolves when the server closes. */
const plainTcp = (port: number, bytes: Buffer) =>
  new Promise<void>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });

const HTTP_GET = Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
const AMQP_SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
const MQTT_CONNECT = mqttPacket.generate({
  cmd: 'connect',
  clientId: 'x',
  protocolVersion: 4,
  clean: true,
  keepalive: 0,
});

it('MQTT: refused connections and unanswerable requests, without a credential, are counted, not logged one by one', async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const port = emulator.endpoints.mqtt.port;
  const seconds = 3;
  const wallMs = await flood(seconds, async () => {
    await times(5, () => rawTlsExchange(emulator, port, HTTP_GET));
    await times(5, () => rawTlsExchange(emulator, port, AMQP_SASL_HEADER));
    await times(4, () => rawTlsExchange(emulator, port, Buffer.from([0x00, 0x01, 0x02, 0x03])));
    await times(2, () => plainTcp(port, MQTT_CONNECT));
  });
  // One connection with a wrong key (its CONNECT is accepted, its requests read: see mqtt.ts) sends
  // 100 requests without a $rid and 20 with one over MAX_REQUEST_ID_LENGTH, in the same second.
  const id = 'flood-no-rid';
  const token = createRegistrationSasToken({
    idScope: emulator.idScope,
    registrationId: id,
    key: generateSymmetricKey(32),
  });
  const publish = (topic: string) =>
    mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('{}'), qos: 0, retain: false, dup: false });
  const connection = rawMqttConnection(emulator);
  await connection.write(
    Buffer.concat([
      mqttPacket.generate({
        cmd: 'connect',
        clientId: id,
        username: dpsUsername(id),
        password: Buffer.from(token),
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
      }),
      ...Array.from({ length: 100 }, () => publish('$dps/registrations/PUT/iotdps-register/')),
      ...Array.from({ length: 20 }, () =>
        publish(`$dps/registrations/PUT/iotdps-register/?$rid=${'r'.repeat(MAX_REQUEST_ID_LENGTH + 1)}`),
      ),
      Buffer.from([0xe0, 0x00]), // DISCONNECT
    ]),
  );
  await connection.closed;
  // The listener serves on: an SDK device registers over MQTT.
  expect(await register(emulator, 'after-mqtt-flood', groupDeviceKey('hashed', 'after-mqtt-flood'))).toMatchObject({
    status: 'assigned',
  });
  await bed.close();

  const protocol = tally(
    logs.filter((l) => l.event === 'mqtt.protocol'),
    MQTT_LIMITED_WARNINGS['mqtt.protocol'] as LimitedKind,
  );
  // The clients not speaking TLS are counted under the TLS error's code (one code for all of them).
  const notTls = Object.keys(protocol.byKey).filter((key) => key.startsWith('ERR_'));
  expect(notTls).toHaveLength(1);
  const bound = { seconds: clock.seconds, wallMs };
  expectBounded(
    logs,
    'mqtt.protocol',
    MQTT_LIMITED_WARNINGS['mqtt.protocol'],
    { http: 15, amqp: 15, unknown: 12, [notTls[0] as string]: 6 },
    bound,
  );
  expectBounded(
    logs,
    'mqtt.request',
    MQTT_LIMITED_WARNINGS['mqtt.request'],
    { 'no-rid': 100, 'rid-too-long': 20 },
    bound,
  );
});

it('AMQP: connections refused for what they sent, without a credential, are counted, not logged one by one', async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const wallMs = await flood(3, async () => {
    await times(4, () => rawAmqpExchange(emulator, HTTP_GET));
    await times(4, () => rawAmqpExchange(emulator, MQTT_CONNECT));
    await times(4, () => rawAmqpExchange(emulator, Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    await times(2, () => plainTcpToAmqpPort(emulator, AMQP_SASL_HEADER));
  });
  expect(
    await register(emulator, 'after-amqp-flood', groupDeviceKey('hashed', 'after-amqp-flood'), { transport: 'amqp' }),
  ).toMatchObject({ status: 'assigned' });
  await bed.close();

  const kind = AMQP_LIMITED_WARNINGS['amqp.protocol'] as LimitedKind;
  const notTls = Object.keys(
    tally(
      logs.filter((l) => l.event === 'amqp.protocol'),
      kind,
    ).byKey,
  ).filter((key) => key.startsWith('ERR_'));
  expect(notTls).toHaveLength(1);
  expectBounded(
    logs,
    'amqp.protocol',
    kind,
    { 'not-amqp': 24, 'unsupported-header': 12, [notTls[0] as string]: 6 },
    { seconds: clock.seconds, wallMs },
  );
});

it('WebSockets: refused upgrades and connections closed for what they sent are counted, not logged one by one', async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const wallMs = await flood(3, async () => {
    // An upgrade offering a subprotocol not served: 400.
    const refused = await times(4, () => openWebSocket(emulator, ['not-served']));
    expect(refused.map((r) => r.kind)).toEqual(['refused', 'refused', 'refused', 'refused']);
    // A text message: closed with 1003.
    await times(3, async () => {
      const mqtt = await openMqttWebSocket(emulator);
      mqtt.ws.send('text');
      return mqtt.closed;
    });
    // HTTP inside the WebSocket: the MQTT listener's refusal (mqtt.protocol).
    await times(3, async () => {
      const attempt = await openWebSocket(emulator, ['mqtt']);
      if (attempt.kind !== 'open') throw new Error('not upgraded');
      const closed = closeOf(attempt.ws);
      attempt.ws.send(HTTP_GET);
      return closed;
    });
  });
  expect(
    await register(emulator, 'after-ws-flood', groupDeviceKey('hashed', 'after-ws-flood'), { transport: 'mqtt-ws' }),
  ).toMatchObject({ status: 'assigned' });
  await bed.close();

  const bound = { seconds: clock.seconds, wallMs };
  expectBounded(logs, 'websocket.upgrade', WEBSOCKET_LIMITED_WARNINGS['websocket.upgrade'], { '400': 12 }, bound);
  expectBounded(
    logs,
    'websocket.connection',
    WEBSOCKET_LIMITED_WARNINGS['websocket.connection'],
    { TEXT_MESSAGE: 9 },
    bound,
  );
  expectBounded(logs, 'mqtt.protocol', MQTT_LIMITED_WARNINGS['mqtt.protocol'], { http: 9 }, bound);
});

it("the hubs' MQTT: wills dropped and packets too large before any credential, and a device's QoS 2 PUBLISHes, are counted", async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const registry = registryClient(emulator, HUB_A);
  const id = 'flood-hub-device';
  const key = await createDeviceKey(registry, id);
  const wrongKey = generateSymmetricKey(32);
  // A will on a twin topic (dropped, with a warning, before the CONNECT's credentials are read).
  const connectWithWill = mqttPacket.generate({
    ...decodeConnect(hubConnect({ hub: HUB_A, deviceId: 'stranger', key: wrongKey })),
    will: {
      topic: '$iothub/twin/PATCH/properties/reported/?$rid=1',
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
    },
  });
  const oversized = Buffer.concat([
    hubConnect({ hub: HUB_A, deviceId: 'stranger', key: wrongKey }),
    Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]),
  ]);
  const qos2 = Buffer.concat([
    hubConnect({ hub: HUB_A, deviceId: id, key }),
    mqttPacket.generate({
      cmd: 'publish',
      topic: `devices/${id}/messages/events/`,
      payload: Buffer.from('{}'),
      qos: 2,
      messageId: 1,
      retain: false,
      dup: false,
    }),
  ]);
  const sendOver = (bytes: Buffer) => sendOverMqtt(emulator, bytes);
  const wallMs = await flood(3, async () => {
    await times(4, () => sendOver(connectWithWill));
    await times(4, () => sendOver(oversized));
    // One device, one connection at a time (a second CONNECT of its id would close the first).
    for (let i = 0; i < 3; i++) await sendOver(qos2);
  });
  await expectHubServesOn(emulator, id, key);
  await bed.close();

  expectBounded(
    logs,
    'hub.mqtt',
    HUB_MQTT_LIMITED_WARNINGS['hub.mqtt'],
    { 'will-dropped': 12, 'too-large': 12, 'qos-2': 9 },
    { seconds: clock.seconds, wallMs },
  );
});

it("the hubs' MQTT: a device's direct method answers for no call in flight are counted, the connection kept", async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const id = 'flood-method-answers';
  const key = await createDeviceKey(registryClient(emulator, HUB_A), id);
  const device = rawMqttConnection(emulator);
  await device.write(hubConnect({ hub: HUB_A, deviceId: id, key }));
  await device.packets(1);
  const answer = (rid: number) =>
    mqttPacket.generate({
      cmd: 'publish',
      topic: `$iothub/methods/res/200/?$rid=${rid}`,
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
      dup: false,
    });
  let rid = 0;
  const wallMs = await flood(3, async () => {
    // Five answers no call waits for, then a PINGREQ: its PINGRESP says they were all read.
    await device.write(Buffer.concat([...Array.from({ length: 5 }, () => answer(rid++)), PINGREQ]));
    await device.packets(1 + rid / 5);
  });
  expect(device.received.map((p) => p.cmd)).toEqual(['connack', 'pingresp', 'pingresp', 'pingresp']);
  await bed.close();
  expectBounded(
    logs,
    'hub.method-answer',
    HUB_MQTT_LIMITED_WARNINGS['hub.method-answer'],
    { 'unknown-rid': 15 },
    { seconds: clock.seconds, wallMs },
  );
});

/** Writes `bytes` on a raw TLS connection to the MQTT port; resolves when the emulator has closed it. */
async function sendOverMqtt(emulator: TestBedWithWebhook['emulator'], bytes: Buffer): Promise<void> {
  const connection = rawMqttConnection(emulator);
  await connection.write(bytes);
  await connection.closed;
}

/** The hub serves on after a flood: the SDK device connects and sends. */
async function expectHubServesOn(emulator: TestBedWithWebhook['emulator'], id: string, key: string): Promise<void> {
  const client = await deviceClient(emulator, { hub: HUB_A, deviceId: id, key });
  await client.open();
  await client.sendEvent(new Message('{"after":true}'));
  await client.close();
  expect(emulator.telemetry(HUB_A, id).map((m) => m.body.toString())).toEqual(['{"after":true}']);
}

/** A CONNECT packet's fields, decoded from its bytes. */
function decodeConnect(bytes: Buffer): mqttPacket.IConnectPacket {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let packet: mqttPacket.IConnectPacket | undefined;
  parser.on('packet', (p) => {
    packet = p as mqttPacket.IConnectPacket;
  });
  parser.parse(bytes);
  if (!packet) throw new Error('not a CONNECT');
  return packet;
}

it("the hubs' MQTT: connections refused for their credentials (wrong key, unknown device, unknown hub) are counted by reason, never a token logged", async () => {
  const { bed, logs, clock, flood } = await floodBed();
  const { emulator } = bed;
  const registry = registryClient(emulator, HUB_A);
  const id = 'flood-refused-device';
  const key = await createDeviceKey(registry, id);
  const wrongKey = generateSymmetricKey(32);
  const refusedEvents: string[] = [];
  emulator.on('hub', (event: HubEvent) => {
    if (event.kind === 'connect-refused') refusedEvents.push(`${event.deviceId} ${event.reason}`);
  });
  const refusedOver = (bytes: Buffer) => sendOverMqtt(emulator, bytes);
  const wrongKeyConnect = hubConnect({ hub: HUB_A, deviceId: id, key: wrongKey });
  const strangerConnect = hubConnect({ hub: HUB_A, deviceId: 'stranger', key: wrongKey });
  const unknownHubConnect = hubConnect({ hub: 'no-such-hub.azure-devices.net', deviceId: id, key });
  const wallMs = await flood(3, async () => {
    await times(6, () => refusedOver(wrongKeyConnect));
    await times(6, () => refusedOver(strangerConnect));
    await times(4, () => refusedOver(unknownHubConnect));
  });
  await expectHubServesOn(emulator, id, key);
  await bed.close();

  // The `hub` event still names every device turned away.
  expect(refusedEvents.length).toBe(48);
  expect(refusedEvents.filter((e) => e === `stranger device-not-found`).length).toBe(18);
  expectBounded(
    logs,
    'hub.connect-refused',
    REFUSAL_LIMITED_WARNINGS['hub.connect-refused'],
    { 'signature-mismatch': 18, 'device-not-found': 18, 'unknown-hub': 12 },
    { seconds: clock.seconds, wallMs },
  );
  // No line carries what the clients signed with.
  for (const line of logs) expect(JSON.stringify(line)).not.toMatch(/sig=|SharedAccessSignature/);
});
