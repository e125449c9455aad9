// The benchmarks' lean DPS device over MQTT: raw MQTT 3.1.1 packets (mqtt-packet, the encoder and
// parser MQTT.js itself uses) on a TLS socket, one shared SecureContext, nothing else. It speaks the
// same exchange as azure-iot-provisioning-device-mqtt (CONNECT, SUBSCRIBE to the response filter,
// PUBLISH register, PUBLISH operation-status polls) so that what is measured is the server's cost,
// not the SDK's.
import tls from 'node:tls';
import { createRegistrationSasToken } from '@dpskit/contracts';
import mqttPacket from 'mqtt-packet';

export interface LeanTarget {
  host: string;
  port: number;
  idScope: string;
  /** One context for every connection (building one per device costs a CA parse each). */
  secureContext: tls.SecureContext;
}

export interface LeanDevice {
  registrationId: string;
  /** The device key (a group's derived key). */
  key: string;
}

export interface LeanResult {
  status: number;
  body: { status?: string; registrationState?: { assignedHub?: string } } & Record<string, unknown>;
}

const API_VERSION = '2019-03-31';
const RESPONSE = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;

function connect(target: LeanTarget, device: LeanDevice, keepalive: number): tls.TLSSocket {
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    servername: 'localhost',
    secureContext: target.secureContext,
  });
  socket.setNoDelay(true);
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

/**
 * Registers one device: a fresh TLS connection, CONNECT, SUBSCRIBE, register, polls until the
 * answer is final, DISCONNECT. Resolves with the final answer; rejects when the connection ends first.
 */
export function registerLean(target: LeanTarget, device: LeanDevice): Promise<LeanResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(target, device, 0);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let rid = 0;
    let settled = false;
    const finish = (error: Error | undefined, result?: LeanResult) => {
      if (settled) return;
      settled = true;
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        socket.end(mqttPacket.generate({ cmd: 'disconnect' }));
        resolve(result as LeanResult);
      }
    };
    const publish = (topic: string, payload: string) =>
      socket.write(
        mqttPacket.generate({
          cmd: 'publish',
          topic,
          payload,
          qos: 1,
          messageId: ++rid + 1,
          retain: false,
          dup: false,
        }),
      );
    parser.on('packet', (packet) => {
      switch (packet.cmd) {
        case 'connack':
          if (packet.returnCode !== 0) return finish(new Error(`CONNACK ${packet.returnCode}`));
          socket.write(
            mqttPacket.generate({
              cmd: 'subscribe',
              messageId: 1,
              subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
            }),
          );
          return;
        case 'suback':
          publish(
            `$dps/registrations/PUT/iotdps-register/?$rid=${rid + 1}`,
            JSON.stringify({ registrationId: device.registrationId }),
          );
          return;
        case 'publish': {
          if (packet.qos === 1) socket.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId ?? 0 }));
          const match = RESPONSE.exec(packet.topic);
          if (!match) return;
          const status = Number(match[1]);
          const body = JSON.parse(packet.payload.toString()) as LeanResult['body'];
          if (status === 202) {
            publish(
              `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid + 1}&operationId=${String(body.operationId)}`,
              '',
            );
            return;
          }
          return finish(undefined, { status, body });
        }
        default:
          return;
      }
    });
    parser.on('error', (err) => finish(err));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`${device.registrationId}: connection closed before the answer`)));
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
        socket.write(
          mqttPacket.generate({
            cmd: 'subscribe',
            messageId: 1,
            subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
          }),
        );
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
