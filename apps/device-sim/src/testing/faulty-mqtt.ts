import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { TestPki } from './tls.js';

/** When the faulty broker drops a device's connection. */
export type MqttFault =
  | 'reset-on-connect'
  | 'reset-on-subscribe'
  | 'reset-on-publish'
  | 'close-on-publish'
  /** Answers the register request `assigned` at once, then resets when the SDK unsubscribes to disconnect. */
  | 'reset-after-answer'
  /** Answers the register request `assigning` (retry-after 2 s), resets while the device waits, answers its poll. */
  | 'reset-while-waiting';

export interface FaultyMqttBroker {
  host: string;
  close(): Promise<void>;
}

/**
 * A TLS server that speaks just enough MQTT 3.1.1 (CONNACK, SUBACK) for the SDK's transport to
 * get going, then drops the connection at the chosen step, with a TCP reset or a plain close:
 * the transport faults a real network or a crashing service produces.
 */
export async function startFaultyMqttBroker(pki: TestPki, fault: MqttFault): Promise<FaultyMqttBroker> {
  const sockets = new Set<Socket>();
  // A reset needs the TCP socket under the TLS one; the client port ties the two together.
  const tcpByPort = new Map<number | undefined, Socket>();
  const drop = (socket: tls.TLSSocket) => {
    const tcp = tcpByPort.get(socket.remotePort);
    if (fault.startsWith('reset') && tcp) tcp.resetAndDestroy();
    else socket.destroy();
  };
  const server = tls.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const packet = nextPacket(buffered);
        if (!packet) return;
        buffered = buffered.subarray(packet.length);
        const type = packet.type;
        if (type === 1) {
          if (fault === 'reset-on-connect') return drop(socket);
          socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
        } else if (type === 8) {
          if (fault === 'reset-on-subscribe') return drop(socket);
          socket.write(Buffer.from([0x90, 0x03, packet.body[0] ?? 0, packet.body[1] ?? 0, 0x01]));
        } else if (type === 3) {
          if (fault === 'reset-while-waiting') {
            // The register request: `assigning`, then the reset while the device waits. Its poll,
            // on a new connection: the final answer (the service came back with its operations).
            const polled = topicOf(packet.body).includes('iotdps-get-operationstatus');
            socket.write(Buffer.concat([puback(packet.body), answer(packet.body, polled ? 'assigned' : 'assigning')]));
            if (!polled) setTimeout(() => drop(socket), 200);
            continue;
          }
          if (fault !== 'reset-after-answer') return drop(socket);
          socket.write(Buffer.concat([puback(packet.body), answer(packet.body, 'assigned')]));
        } else if (type === 10) {
          if (fault === 'reset-after-answer') return drop(socket);
          socket.write(Buffer.from([0xb0, 0x02, packet.body[0] ?? 0, packet.body[1] ?? 0]));
        } else if (type === 12) {
          socket.write(Buffer.from([0xd0, 0x00]));
        }
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    tcpByPort.set(socket.remotePort, socket);
    socket.once('close', () => {
      sockets.delete(socket);
      tcpByPort.delete(socket.remotePort);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: `localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function nextPacket(buffer: Buffer): { type: number; body: Buffer; length: number } | undefined {
  if (buffer.length < 2) return undefined;
  let remaining = 0;
  let multiplier = 1;
  let offset = 1;
  for (;;) {
    const byte = buffer[offset];
    if (byte === undefined) return undefined;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    offset += 1;
    if ((byte & 0x80) === 0) break;
    if (offset > 4) throw new Error('malformed MQTT remaining length');
  }
  if (buffer.length < offset + remaining) return undefined;
  return {
    type: (buffer[0] ?? 0) >> 4,
    body: buffer.subarray(offset, offset + remaining),
    length: offset + remaining,
  };
}

/** PUBACK for a QoS 1 PUBLISH body (topic length, topic, packet id, payload). */
function puback(body: Buffer): Buffer {
  const topicLength = body.readUInt16BE(0);
  return Buffer.from([0x40, 0x02, body[2 + topicLength] ?? 0, body[3 + topicLength] ?? 0]);
}

/** DPS's answer to a register PUBLISH, on the response topic with its `$rid`: final, or to poll in 2 s. */
function answer(body: Buffer, status: 'assigned' | 'assigning'): Buffer {
  const topicLength = body.readUInt16BE(0);
  const topic = topicOf(body);
  // A poll's body is empty: its operation id carries the registration id (see below).
  const text = body
    .subarray(4 + topicLength)
    .toString('utf8')
    .trim();
  const registrationId = text
    ? (JSON.parse(text) as { registrationId: string }).registrationId
    : decodeURIComponent(/operationId=op\.([^&]+)/.exec(topic)?.[1] ?? '');
  const rid = /\$rid=([^&]+)/.exec(topic)?.[1] ?? '0';
  const responseTopic = Buffer.from(
    status === 'assigned'
      ? `$dps/registrations/res/200/?$rid=${rid}`
      : `$dps/registrations/res/202/?$rid=${rid}&retry-after=2`,
  );
  const operationId = `op.${registrationId}`;
  const payload = Buffer.from(
    JSON.stringify(
      status === 'assigning'
        ? { operationId, status }
        : {
            operationId,
            status: 'assigned',
            registrationState: {
              registrationId,
              assignedHub: 'faulty-hub.azure-devices.net',
              deviceId: registrationId,
              status: 'assigned',
              substatus: 'initialAssignment',
            },
          },
    ),
  );
  const variable = Buffer.concat([
    Buffer.from([responseTopic.length >> 8, responseTopic.length & 0xff]),
    responseTopic,
  ]);
  const remaining = variable.length + payload.length;
  const length: number[] = [];
  let rest = remaining;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([0x30, ...length]), variable, payload]);
}

function topicOf(publishBody: Buffer): string {
  return publishBody.subarray(2, 2 + publishBody.readUInt16BE(0)).toString('utf8');
}
