import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { TestPki } from './tls.js';

/** When the faulty broker drops a device's connection. */
export type MqttFault = 'reset-on-connect' | 'reset-on-subscribe' | 'reset-on-publish' | 'close-on-publish';

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
          return drop(socket);
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
