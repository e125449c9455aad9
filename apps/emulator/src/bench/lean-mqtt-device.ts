// The benchmarks' lean DPS device over MQTT: raw MQTT 3.1.1 packets (mqtt-packet, the encoder and
// parser MQTT.js itself uses, and the emulator) on the same TLS connection as the bare handshakes it
// is measured against (device-tls.ts). It speaks the exchange azure-iot-provisioning-device-mqtt
// speaks (CONNECT with a SAS token, SUBSCRIBE to the response filter at QoS 1, PUBLISH register,
// PUBLISH operation-status polls, PUBACK for every answer, DISCONNECT), so that the server does what
// it does for the SDK, with nothing around it on the client: packets that go out together are written
// together (one TLS record, one write), and SUBSCRIBE and register go out together after CONNACK.
// Used by bench:server (in its own process) and by lean-clients.ts (packages/e2e's bench).

import type tls from 'node:tls';
import { createRegistrationSasToken } from '@dpskit/contracts/keys';
import mqttPacket from 'mqtt-packet';
import { connectTls, type TlsTarget } from './device-tls.js';

export interface LeanTarget extends TlsTarget {
  idScope: string;
}

export interface LeanDevice {
  registrationId: string;
  /** The device key (a group's derived key). */
  key: string;
}

export interface LeanResult {
  status: number;
  body: { status?: string; operationId?: string; registrationState?: { assignedHub?: string } } & Record<
    string,
    unknown
  >;
}

const API_VERSION = '2019-03-31';
const RESPONSE = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;
const RETRY_AFTER = /(?:^|&)retry-after=(\d+)/;
const DISCONNECT = mqttPacket.generate({ cmd: 'disconnect' });
const SUBSCRIBE = mqttPacket.generate({
  cmd: 'subscribe',
  messageId: 1,
  subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
});

function connect(target: LeanTarget, device: LeanDevice, keepalive: number): tls.TLSSocket {
  const socket = connectTls(target);
  // Written now, sent in the first record after the handshake.
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive,
      clientId: device.registrationId,
      username: `${target.idScope}/registrations/${device.registrationId}/api-version=${API_VERSION}`,
      password: Buffer.from(
        createRegistrationSasToken({ idScope: target.idScope, registrationId: device.registrationId, key: device.key }),
      ),
    }),
  );
  return socket;
}

const request = (topic: string, payload: string, messageId: number) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false });

/**
 * Registers one device: a fresh TLS connection, CONNECT, SUBSCRIBE + register, polls until the
 * answer is final (at once, or after the answer's retry-after), DISCONNECT. Resolves with the final
 * answer (any status); rejects when the connection ends first or after `timeoutMs`.
 */
export function registerLean(target: LeanTarget, device: LeanDevice, timeoutMs = 60_000): Promise<LeanResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(target, device, 0);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    // Request ids and packet ids alike: 1 is SUBSCRIBE's, requests count from 2.
    let id = 1;
    let settled = false;
    const timer = setTimeout(
      () => fail(new Error(`${device.registrationId}: no final answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const poll = (operationId: string, ack: Buffer) => {
      id += 1;
      socket.write(
        Buffer.concat([
          ack,
          request(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${id}&operationId=${operationId}`, '', id),
        ]),
      );
    };
    parser.on('packet', (packet) => {
      if (settled) return;
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return fail(new Error(`${device.registrationId}: CONNACK ${packet.returnCode}`));
        id += 1;
        socket.write(
          Buffer.concat([
            SUBSCRIBE,
            request(
              `$dps/registrations/PUT/iotdps-register/?$rid=${id}`,
              JSON.stringify({ registrationId: device.registrationId }),
              id,
            ),
          ]),
        );
        return;
      }
      if (packet.cmd !== 'publish') return; // SUBACK, PUBACK
      const ack = mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId ?? 0 });
      const match = RESPONSE.exec(packet.topic);
      if (!match) return fail(new Error(`${device.registrationId}: an answer on ${packet.topic}`));
      const status = Number(match[1]);
      const body = JSON.parse(packet.payload.toString()) as LeanResult['body'];
      if ((status === 202 || body.status === 'assigning') && typeof body.operationId === 'string') {
        const operationId = body.operationId;
        const retryAfter = Number(RETRY_AFTER.exec(match[2] ?? '')?.[1] ?? 0);
        if (retryAfter > 0) {
          socket.write(ack);
          setTimeout(() => poll(operationId, Buffer.alloc(0)), retryAfter * 1000);
        } else poll(operationId, ack);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.end(Buffer.concat([ack, DISCONNECT]));
      resolve({ status, body });
    });
    parser.on('error', fail);
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`${device.registrationId}: connection closed before the final answer`)));
  });
}

/**
 * Connects one device and leaves it idle after its SUBSCRIBE is acknowledged (what a device that
 * is about to register holds). Resolves with the socket; the caller ends it.
 */
export function connectIdle(target: LeanTarget, device: LeanDevice, keepalive = 0): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(target, device, keepalive);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return reject(new Error(`CONNACK ${packet.returnCode}`));
        socket.write(SUBSCRIBE);
      } else if (packet.cmd === 'suback') {
        resolve(socket);
      }
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`${device.registrationId}: connection closed`)));
  });
}

/** Runs `count` tasks with at most `concurrency` at once; `task(i)` for i = 0 … count − 1. */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
