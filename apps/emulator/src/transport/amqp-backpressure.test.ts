import type { Socket } from 'node:net';
import { createRegistrationSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type Connection, type Receiver, type Sender } from 'rhea';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import { connectRheaDevice, rawTransfers } from '../testing/raw-amqp.js';
import { writeUntilClosed } from '../testing/raw-websocket.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_UNSETTLED_ANSWERS } from './amqp.js';

// AMQP clients that take answers and do not let them go. rhea, the server, writes whatever it has
// to send without looking at the socket, and keeps every answer until the client settles it:
// - a client that sends requests and never reads its socket had every answer kept in the
//   socket's buffer; now reading stops while answers wait, TCP holds the client back, and the idle
//   timeout closes the stalled connection. Old code, 32 MB of polls, read at full speed: the
//   process at 507 MB RSS, 385 MB of it buffers (TLS), 626 and 484 MB (WebSockets); then closed
//   after 6.3-6.4 MB at 153-154 MB RSS. Since request credit is granted as each request is
//   answered, such a client (it writes its transfers itself, ignoring credit) is closed at the
//   first request beyond CREDIT_WINDOW (amqp:link:transfer-limit-exceeded) and read no further;
//   one that keeps to its credit and never reads has at most CREDIT_WINDOW answers waiting;
// - a client that reads but never settles made rhea throw at the 2049th answer, from a promise
//   nobody handled (the process's unhandled rejection); now the connection is closed at
//   MAX_UNSETTLED_ANSWERS with amqp:resource-limit-exceeded.
// After each an SDK device still registers over AMQP.

const IDLE_MS = 500;
let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];
// Each test in a second of its own on the log's clock: the first warning of each kind it causes is
// logged in full (the listeners' warnings are limited to one line in full a second per kind).
const clock = logClock();
beforeEach(() => clock.nextSecond());

beforeAll(async () => {
  bed = await startTestBedWithWebhook({
    limits: { idleTimeoutMs: IDLE_MS },
    logLevel: 'debug',
    log: (record) => logs.push(record),
    logClock: clock.now,
  });
});
afterAll(async () => {
  await bed?.close();
});

const stillServes = async (id: string, on: TestBedWithWebhook = bed) =>
  expect(await register(on.emulator, id, groupDeviceKey('hashed', id), { transport: 'amqp' })).toMatchObject({
    status: 'assigned',
  });

/** More than every socket buffer on the way can hold; bounded, as the old code read it all. */
const LIMIT_BYTES = 32 * 1024 * 1024;

/** A receiver link with credit for every answer the server could send (only the socket holds them back) and a sender link. */
async function openLinks(connection: Connection, id: string): Promise<{ sender: Sender }> {
  const address = `${bed.emulator.idScope}/registrations/${id}`;
  const receiver: Receiver = connection.open_receiver({ source: { address }, credit_window: 0 } as never);
  receiver.add_credit(100_000_000);
  const sender: Sender = connection.open_sender({ target: { address } } as never);
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  return { sender };
}

/**
 * Polls of an operation that does not exist, each answered by a rejection (a disposition frame), so
 * that the client has no answer to settle and only the socket's buffer holds what the server writes.
 */
function transferWriter(sender: Sender): () => Buffer {
  return rawTransfers(sender, {
    application_properties: {
      'iotdps-operation-type': 'iotdps-get-operationstatus',
      'iotdps-operation-id': '4.0000000000000000.unknown',
    },
    body: '',
  } as never);
}

it('closes a client that grants credit, sends past its own and never reads, and reads it no further', async () => {
  const id = 'amqp-no-reader';
  const key = groupDeviceKey('hashed', id);
  const { connection } = await connectRheaDevice(bed.emulator, id, key);
  const { sender } = await openLinks(connection, id);
  const socket = (connection as unknown as { socket: Socket }).socket;
  socket.pause(); // never reads again
  let closed = false;
  const close = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );

  const from = logs.length;
  const transfer = transferWriter(sender);
  let written = 0;
  while (!closed && written < LIMIT_BYTES) {
    const batch = Buffer.concat(Array.from({ length: 256 }, transfer));
    written += batch.length;
    if (!socket.write(batch)) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), close]);
    }
  }
  socket.destroy();
  await close;
  expect({
    closedBeforeAllWritten: written < LIMIT_BYTES,
    creditClose: logs.slice(from).filter((l) => l.event === 'amqp.credit').length,
  }).toEqual({ closedBeforeAllWritten: true, creditClose: 1 });
  await stillServes('amqp-after-no-reader');
});

it('does the same over WebSockets (AMQPWSB10)', async () => {
  const id = 'amqp-ws-no-reader';
  const key = groupDeviceKey('hashed', id);
  const endpoint = bed.emulator.endpoints.webSockets;
  if (!endpoint) throw new Error('no WebSockets');
  // rhea over a `ws` client, kept to be paused and written to below.
  let client: WebSocket | undefined;
  class KeptWebSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      client = this;
    }
  }
  const connection = rhea.create_container().connect({
    connection_details: rhea.websocket_connect(KeptWebSocket as never)(
      `wss://localhost:${endpoint.port}/$iothub/websocket`,
      ['AMQPWSB10'],
      { ca: bed.emulator.caCertPem },
    ),
    reconnect: false,
    username: `${bed.emulator.idScope}/registrations/${id}`,
    password: createRegistrationSasToken({ idScope: bed.emulator.idScope, registrationId: id, key }),
  } as never);
  connection.on('error', () => {});
  connection.on('connection_error', () => {});
  await new Promise<void>((resolve) => connection.once('connection_open', () => resolve()));
  const ws = client as WebSocket;
  const { sender } = await openLinks(connection, id);
  ws.pause(); // never reads again
  const from = logs.length;
  const transfer = transferWriter(sender);
  const written = await writeUntilClosed(ws, () => Buffer.concat(Array.from({ length: 256 }, transfer)), LIMIT_BYTES);
  expect({
    closedBeforeAllWritten: written < LIMIT_BYTES,
    creditClose: logs.slice(from).filter((l) => l.event === 'amqp.credit').length,
  }).toEqual({ closedBeforeAllWritten: true, creditClose: 1 });
  await stillServes('amqp-ws-after-no-reader');
});

describe('a client that reads its answers but never settles them', () => {
  // An emulator of its own, at the default idle timeout: this test is about the unsettled bound,
  // and under the file's 500 ms one a loaded machine that held the process for half a second (the
  // client queues 2048 requests in one turn) had the connection closed as idle first, the client
  // seeing a bare disconnect instead of the bound's error.
  let quiet: TestBedWithWebhook;
  beforeAll(async () => {
    quiet = await startTestBedWithWebhook({
      logLevel: 'debug',
      log: (record) => logs.push(record),
      logClock: clock.now,
    });
  });
  afterAll(async () => {
    await quiet?.close();
  });

  it(`closes a connection whose client does not settle its answers at ${MAX_UNSETTLED_ANSWERS}, not the process`, async () => {
    const id = 'amqp-no-settle';
    const key = groupDeviceKey('hashed', id);
    await register(quiet.emulator, id, key, { transport: 'amqp' });
    const { connection, closed } = await connectRheaDevice(quiet.emulator, id, key);
    const address = `${quiet.emulator.idScope}/registrations/${id}`;
    // Reads everything and grants credit, but never accepts (settles) an answer.
    const receiver: Receiver = connection.open_receiver({
      source: { address },
      credit_window: 0,
      autoaccept: false,
    } as never);
    receiver.add_credit(100_000);
    let answers = 0;
    receiver.on('message', () => {
      answers += 1;
    });
    const sender: Sender = connection.open_sender({ target: { address } } as never);
    // Requests as the server's credit allows (it grants more as each is answered), past rhea's 2048.
    let sent = 0;
    let done = false;
    const ended = closed.then((error) => {
      done = true;
      return error;
    });
    while (!done && sent < 2100) {
      while (sender.sendable() && sent < 2100) {
        sender.send({
          application_properties: { 'iotdps-operation-type': 'iotdps-get-registration' },
          body: '',
        } as never);
        sent += 1;
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 5)), ended]);
    }
    expect(await ended).toMatchObject({
      condition: 'amqp:resource-limit-exceeded',
      description: `At most ${MAX_UNSETTLED_ANSWERS} answers may wait for the client to settle them.`,
    });
    expect(answers).toBe(MAX_UNSETTLED_ANSWERS);
    expect(logs.findLast((l) => l.event === 'amqp.unsettled')).toMatchObject({ level: 'warn' });
    await stillServes('amqp-after-no-settle', quiet);
  });
});
