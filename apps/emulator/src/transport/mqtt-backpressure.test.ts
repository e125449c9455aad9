import tls from 'node:tls';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { groupDeviceKey } from '../testing/fixtures.js';
import { connectAndSubscribe } from '../testing/mqtt-bytes.js';
import { openWebSocket, writeUntilClosed } from '../testing/raw-websocket.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// A DPS MQTT client that writes requests and never reads the answers. The server used to read on
// and keep every answer it could not write (32.7 MB of status requests held 195 MB of answers on
// one connection); now it stops reading while answers wait, so TCP holds the client back and the
// idle timeout closes the stalled connection. The same over MQTT over WebSockets.
const IDLE_MS = 500;
let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];
beforeAll(async () => {
  bed = await startTestBedWithWebhook({
    limits: { idleTimeoutMs: IDLE_MS },
    logLevel: 'debug',
    log: (record) => logs.push(record),
  });
});
afterAll(async () => {
  await bed?.close();
});

/** More than every socket buffer on the way can hold (loopback TCP buffers grow to tens of MB). */
const LIMIT_BYTES = 64 * 1024 * 1024;

/** About 64 KiB of operation-status requests (for an operation that does not exist), written as one batch. */
function statusRequests(): Buffer {
  const status = mqttPacket.generate({
    cmd: 'publish',
    topic: '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1&operationId=4.0000000000000000.unknown',
    payload: Buffer.alloc(0),
    qos: 0,
    retain: false,
    dup: false,
  });
  return Buffer.concat(Array(Math.floor(65_536 / status.length)).fill(status));
}

it('stops reading from a client that does not read its answers, and closes it once stalled', async () => {
  const id = 'no-reader';
  const socket = tls.connect({
    host: '127.0.0.1',
    port: bed.emulator.endpoints.mqtt.port,
    servername: 'localhost',
    ca: bed.emulator.caCertPem,
  });
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  socket.pause(); // never reads
  socket.on('error', () => {});
  let closed = false;
  const close = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  socket.write(connectAndSubscribe(id));
  const batch = statusRequests();
  let written = 0;
  while (!closed && written < LIMIT_BYTES) {
    written += batch.length;
    if (!socket.write(batch)) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), close]);
    }
  }
  await close;
  expect({
    closedBeforeAllWritten: written < LIMIT_BYTES,
    idleClose: logs.some((l) => l.event === 'mqtt.idle'),
  }).toEqual({
    closedBeforeAllWritten: true,
    idleClose: true,
  });
  expect(
    (
      await register(bed.emulator, 'after-no-reader', groupDeviceKey('hashed', 'after-no-reader'), {
        transport: 'mqtt',
      })
    ).status,
  ).toBe('assigned');
  process.stdout.write(`no-reader: ${(written / 1e6).toFixed(1)} MB written before the close\n`);
});

it('does the same over WebSockets (mqtt)', async () => {
  const id = 'no-reader-ws';
  const attempt = await openWebSocket(bed.emulator, ['mqtt']);
  if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
  const { ws } = attempt;
  ws.pause(); // never reads again
  const from = logs.length;
  ws.send(connectAndSubscribe(id));
  const batch = statusRequests();
  const written = await writeUntilClosed(ws, () => batch, LIMIT_BYTES);
  expect({
    closedBeforeAllWritten: written < LIMIT_BYTES,
    // The HTTPS listener's idle timeout (limits.idleTimeoutMs, armed again on the upgraded socket).
    idleCloses: logs
      .slice(from)
      .filter((l) => l.event.endsWith('.idle'))
      .map((l) => l.event),
  }).toEqual({ closedBeforeAllWritten: true, idleCloses: ['https.idle'] });
  expect(
    (
      await register(bed.emulator, 'after-no-reader-ws', groupDeviceKey('hashed', 'after-no-reader-ws'), {
        transport: 'mqtt-ws',
      })
    ).status,
  ).toBe('assigned');
  process.stdout.write(`no-reader over WebSockets: ${(written / 1e6).toFixed(1)} MB written before the close\n`);
});
