// MQTT packets as bytes, for tests that write to a socket exactly what a client would (several
// packets in one write, a malformed one after them) rather than through a client library.
import net from 'node:net';
import tls from 'node:tls';
import { createDeviceSasToken, createRegistrationSasToken } from '@dpskit/contracts';
import mqttPacket from 'mqtt-packet';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey, ID_SCOPE } from './fixtures.js';

/** The DPS MQTT user name for this registration id, as the raw tests present it. */
export const dpsUsername = (id: string): string =>
  `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31&ClientVersion=raw`;

/** A SAS token for this id under the fixtures' `hashed` group. */
export const dpsToken = (id: string): string =>
  createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: id, key: groupDeviceKey('hashed', id) });

/** An IoT Hub device's CONNECT as the SDK writes it: its SAS token (`sr={hub}/devices/{id}`, no `skn`). */
export function hubConnect(device: {
  hub: string;
  deviceId: string;
  key: string;
  keepalive?: number;
  /** The username's text after `{hub}/{deviceId}` (default `/?api-version=2021-04-12`, the SDKs'). */
  usernameTail?: string;
}): Buffer {
  const { hub, deviceId, key } = device;
  const token = createDeviceSasToken({ hubHostName: hub, deviceId, key });
  return mqttPacket.generate({
    cmd: 'connect',
    clientId: deviceId,
    username: `${hub}/${deviceId}${device.usernameTail ?? '/?api-version=2021-04-12'}`,
    password: Buffer.from(token),
    protocolVersion: 4,
    clean: true,
    keepalive: device.keepalive ?? 0,
  });
}

/** A DPS CONNECT (MQTT 3.1.1, this id's SAS token) with this keepalive in seconds (0: none), as bytes. */
export function dpsConnect(id: string, keepalive = 0): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    clientId: id,
    username: dpsUsername(id),
    password: Buffer.from(dpsToken(id)),
    protocolVersion: 4,
    clean: true,
    keepalive,
  });
}

/** SUBSCRIBE (packet id 1) to DPS's response topics, as the SDK does before its first request. */
export const DPS_SUBSCRIBE = mqttPacket.generate({
  cmd: 'subscribe',
  messageId: 1,
  subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
});

/** CONNECT (MQTT 3.1.1, this id's SAS token) and SUBSCRIBE to the response topics, as bytes. */
export function connectAndSubscribe(id: string): Buffer {
  return Buffer.concat([dpsConnect(id), DPS_SUBSCRIBE]);
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);
/** A PUBLISH with both QoS bits set: MQTT 3.1.1 [MQTT-3.3.1-4] makes it malformed; mqtt-packet's parser refuses it. */
export const MALFORMED = Buffer.from([0x36, 0x00]);
/** A PUBLISH outside the DPS request topics: the session closes the connection for it. */
export const PUBLISH_OUTSIDE = mqttPacket.generate({
  cmd: 'publish',
  topic: 'devices/elsewhere',
  payload: Buffer.from('{}'),
  qos: 0,
  retain: false,
  dup: false,
});

export interface RawMqttConnection {
  /** The packets received so far, decoded. */
  received: mqttPacket.Packet[];
  /** How many bytes were received so far (whole packets or not). */
  receivedBytes(): number;
  write(bytes: Buffer): Promise<void>;
  /** Resolves once `count` packets have arrived. */
  packets(count: number): Promise<void>;
  /** Resolves when the connection has closed. */
  closed: Promise<void>;
}

/**
 * A raw TLS client to the emulator's MQTT port: what it writes goes as is, what it receives is
 * decoded. With `halfOpen` it keeps its side open once the server has ended its own, and writes a
 * PINGREQ every 50 ms until the server closes the connection (a peer that neither closes nor stops
 * talking).
 */
export function rawMqttConnection(
  emulator: Pick<Emulator, 'endpoints' | 'caCertPem'>,
  options: { halfOpen?: boolean } = {},
): RawMqttConnection {
  const received: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet) => received.push(packet));
  let waiting: { count: number; resolve: () => void } | undefined;
  // The TLS socket takes allowHalfOpen from the TCP socket under it.
  const tcp = net.connect({ host: 'localhost', port: emulator.endpoints.mqtt.port, allowHalfOpen: options.halfOpen });
  const socket = tls.connect({ socket: tcp, host: 'localhost', ca: emulator.caCertPem });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let receivedBytes = 0;
  socket.on('data', (chunk: Buffer) => {
    receivedBytes += chunk.length;
    parser.parse(chunk);
    if (waiting && received.length >= waiting.count) waiting.resolve();
  });
  socket.on('end', () => {
    if (!options.halfOpen) return;
    const talk = setInterval(() => socket.write(PINGREQ), 50);
    socket.once('close', () => clearInterval(talk));
  });
  // A half-open peer's writes after the server's close may fail (EPIPE, ECONNRESET): the close is what is awaited.
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    received,
    receivedBytes: () => receivedBytes,
    async write(bytes) {
      await connected;
      socket.write(bytes);
    },
    packets(count) {
      if (received.length >= count) return Promise.resolve();
      return new Promise((resolve) => {
        waiting = { count, resolve };
      });
    },
    closed,
  };
}

/**
 * An MQTT packet with the given type byte and a body of `size` bytes of `fill`, its remaining length
 * encoded as MQTT 3.1.1 2.2.3 says (for the size-guard and framer tests; its body is not meant to parse).
 */
export function packetOfSize(type: number, size: number, fill: number): Buffer {
  const length: number[] = [];
  let rest = size;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([type, ...length]), Buffer.alloc(size, fill)]);
}

/** The SDK's subscription to twin responses (packet id 1), as an IoT Hub device sends it after CONNECT. */
export const SUBSCRIBE_TWIN = mqttPacket.generate({
  cmd: 'subscribe',
  messageId: 1,
  subscriptions: [{ topic: '$iothub/twin/res/#', qos: 0 }],
});

/** A twin GET (request id 7, QoS 0, empty body). */
export const TWIN_GET = mqttPacket.generate({
  cmd: 'publish',
  topic: '$iothub/twin/GET/?$rid=7',
  payload: Buffer.alloc(0),
  qos: 0,
  retain: false,
  dup: false,
});

/**
 * The CONNACK return code a hub's MQTT listener answers a device's CONNECT with `token` as password
 * with (client id the device id, the SDKs' username); an accepted connection is then disconnected.
 */
export async function hubConnackFor(
  emulator: Pick<Emulator, 'endpoints' | 'caCertPem'>,
  device: { hub: string; deviceId: string; token: string },
): Promise<number | undefined> {
  const connection = rawMqttConnection(emulator);
  await connection.write(
    mqttPacket.generate({
      cmd: 'connect',
      clientId: device.deviceId,
      username: `${device.hub}/${device.deviceId}/?api-version=2021-04-12`,
      password: Buffer.from(device.token),
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
    }),
  );
  await connection.packets(1);
  const [connack] = connection.received;
  if (connack?.cmd === 'connack' && connack.returnCode === 0) await connection.write(DISCONNECT);
  await connection.closed;
  return connack?.cmd === 'connack' ? connack.returnCode : undefined;
}
