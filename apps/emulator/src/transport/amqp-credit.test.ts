import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { afterAll, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { closedPortUrl, groupDeviceKey, HUB_A } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import { connectRheaDevice, type RheaDevice, rawDrainFlow, rawTransfers } from '../testing/raw-amqp.js';
import { register } from '../testing/sdk.js';
import { startTestBed, type TestBed } from '../testing/test-bed.js';
import { CREDIT_WINDOW } from './amqp.js';

// Request credit on the device's sender link bounds the requests awaiting answers: the server grants
// CREDIT_WINDOW on attach and one more as each request is answered. It used to grant more as each
// request arrived (rhea's credit window), so a client could have 2048 unanswered requests per session
// (held polls here), and the next made rhea's incoming buffer throw: the connection closed as
// `amqp:decode-error`. A client that sends beyond its credit is now closed at once with
// `amqp:link:transfer-limit-exceeded` and one warning; rhea, which prints an error to stderr for each
// such request and processes it, does not see it. The same for a FLOW with drain set and credit
// left on that link (rhea printed an error for each and took the credit): `amqp:invalid-field`.
//
// Polls are held here: the custom group's webhook does not answer until the test releases it, and
// with retry-after 0 a poll of an assigning operation waits for the allocation (or 5 s) to answer.

/** A webhook that answers each registration's calls only once `release(id)` is called. */
async function heldWebhook() {
  const held = new Map<string, http.ServerResponse[]>();
  const released = new Set<string>();
  const answer = (res: http.ServerResponse) =>
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ iotHubHostName: HUB_A }));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const id = String(JSON.parse(Buffer.concat(chunks).toString('utf8')).deviceRuntimeContext?.registrationId);
      if (released.has(id)) return answer(res);
      held.set(id, [...(held.get(id) ?? []), res]);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = (id: string) => {
    released.add(id);
    for (const res of held.get(id) ?? []) answer(res);
    held.delete(id);
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/allocate?code=test`,
    release,
    async close() {
      for (const id of [...held.keys()]) release(id);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let webhook: Awaited<ReturnType<typeof heldWebhook>>;
let bed: TestBed;
const logs: LogRecord[] = [];
// Each test in a second of its own on the log's clock: the first warning of each kind it causes is
// logged in full (the listeners' warnings are limited to one line in full a second per kind).
const clock = logClock();
beforeEach(() => clock.nextSecond());

beforeAll(async () => {
  webhook = await heldWebhook();
  bed = await startTestBed(webhook.url, await closedPortUrl(), {
    // The webhook is held for as long as a test needs: no deadline of the emulator's ends it first.
    webhook: { timeoutMs: 120_000, retry: { count: 0 } },
    logLevel: 'debug',
    log: (record) => logs.push(record),
    logClock: clock.now,
  });
});
afterAll(async () => {
  await webhook?.close();
  await bed?.close();
});

const pollMessage = (operationId: string) =>
  ({
    application_properties: {
      'iotdps-operation-type': 'iotdps-get-operationstatus',
      'iotdps-operation-id': operationId,
    },
    body: '',
  }) as Message;

interface Device extends RheaDevice {
  sender: Sender;
  socket: Socket;
  /** Status bodies answered so far, in order. */
  answers: { status?: string; operationId?: string }[];
  /** Resolves at the next answer or grant of credit. */
  next(): Promise<void>;
  /** Registers (held by the webhook) and resolves with the operation id. */
  register(): Promise<string>;
  /** Resolves once the server has taken everything sent before it (it answers a new link's attach after them). */
  roundTrip(): Promise<void>;
}

async function openDevice(id: string): Promise<Device> {
  const rheaDevice = await connectRheaDevice(bed.emulator, id, groupDeviceKey('custom', id));
  const { connection } = rheaDevice;
  const address = `${bed.emulator.idScope}/registrations/${id}`;
  const answers: Device['answers'] = [];
  let waiters: (() => void)[] = [];
  const wake = () => {
    const woken = waiters;
    waiters = [];
    for (const resolve of woken) resolve();
  };
  const receiver: Receiver = connection.open_receiver({ source: { address } } as never);
  receiver.on('message', (context: EventContext) => {
    const body = context.message?.body as { content?: Buffer } | undefined;
    answers.push(JSON.parse(String(body?.content)));
    wake();
  });
  const sender: Sender = connection.open_sender({ target: { address } } as never);
  sender.on('sendable', wake);
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  const next = () => new Promise<void>((resolve) => waiters.push(resolve));
  return {
    ...rheaDevice,
    sender,
    socket: (connection as unknown as { socket: Socket }).socket,
    answers,
    next,
    async register() {
      sender.send({
        application_properties: { 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false },
        body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: id }))),
      } as never);
      while (answers.length === 0) await next();
      const [first] = answers;
      expect(first).toMatchObject({ status: 'assigning' });
      return String(first?.operationId);
    },
    roundTrip: () =>
      new Promise<void>((resolve) => {
        connection.open_sender({ target: { address } } as never).once('sender_open', () => resolve());
      }),
  };
}

const stillServes = async (id: string) =>
  expect(await register(bed.emulator, id, groupDeviceKey('hashed', id), { transport: 'amqp' })).toMatchObject({
    status: 'assigned',
  });

it(`lets a device have at most ${CREDIT_WINDOW} requests awaiting answers: credit comes back as each is answered`, async () => {
  const id = 'amqp-credit-held';
  const device = await openDevice(id);
  const operationId = await device.register();
  const POLLS = 3 * CREDIT_WINDOW;
  // The deliveries the server has let the client send so far: rhea's delivery count plus the credit
  // it has left (the last FLOW's delivery-count + link-credit). rhea itself queues what is sent
  // beyond it, so the polls below are sent only within it.
  const link = device.sender as unknown as { delivery_count: number; credit: number };
  const allowed = () => link.delivery_count + link.credit;
  let sent = 0;
  let mostAwaiting = 0;
  const polled = () => device.answers.length - 1;
  const sendPolls = () => {
    // Allowed but not answered: the register (the first delivery) and the polls.
    mostAwaiting = Math.max(mostAwaiting, allowed() - device.answers.length);
    while (1 + sent < allowed() && sent < POLLS) {
      device.sender.send(pollMessage(operationId));
      sent += 1;
    }
  };
  // Held polls, as many as the server's credit lets through; then once more after a round trip, when
  // every credit the server gave for them has arrived (the old code gave more as each arrived).
  sendPolls();
  await device.roundTrip();
  sendPolls();
  // Answered (assigned) once the allocation ends; each answer brings credit for one more poll.
  webhook.release(id);
  while (polled() < POLLS) {
    sendPolls();
    if (polled() < POLLS) await device.next();
  }
  expect(mostAwaiting).toBeLessThanOrEqual(CREDIT_WINDOW);
  expect({ sent, last: device.answers.at(-1)?.status }).toEqual({ sent: POLLS, last: 'assigned' });
  device.connection.close();
  await stillServes('amqp-credit-held-after');
});

it('closes a client that sends requests beyond its credit: amqp:link:transfer-limit-exceeded, one warning, nothing on stderr', async () => {
  const id = 'amqp-credit-ignored';
  const device = await openDevice(id);
  const operationId = await device.register();
  const stderr = vi.spyOn(console, 'error');
  const from = logs.length;
  let closed = false;
  const ended = device.closed.then((error) => {
    closed = true;
    return error;
  });
  // Held polls written past the credit, and past rhea's 2048 unsettled requests (where the old code
  // closed the connection as a decode error).
  const transfer = rawTransfers(device.sender, pollMessage(operationId));
  let written = 0;
  while (!closed && written < 2100) {
    const batch = Buffer.concat(Array.from({ length: 100 }, transfer));
    written += 100;
    if (!device.socket.write(batch)) {
      await Promise.race([new Promise((resolve) => device.socket.once('drain', resolve)), ended]);
    }
  }
  const error = await ended;
  const rheaComplaints = stderr.mock.calls.filter((call) => /credit/i.test(String(call[0])));
  stderr.mockRestore();
  expect(error).toMatchObject({
    condition: 'amqp:link:transfer-limit-exceeded',
    description: expect.stringContaining(`at most ${CREDIT_WINDOW} requests may await their answers`),
  });
  expect(
    logs
      .slice(from)
      .filter((l) => l.level !== 'debug' && l.event.startsWith('amqp.'))
      .map((l) => [l.level, l.event]),
  ).toEqual([['warn', 'amqp.credit']]);
  expect(rheaComplaints).toEqual([]);
  webhook.release(id);
  await stillServes('amqp-credit-ignored-after');
});

it('closes a client whose FLOW on its request link sets drain with credit left: amqp:invalid-field, one warning, nothing on stderr', async () => {
  const id = 'amqp-drain-with-credit';
  const device = await openDevice(id);
  const stderr = vi.spyOn(console, 'error');
  const from = logs.length;
  // As many as a client may write: rhea printed an error for each and took the credit as the link's.
  device.socket.write(Buffer.concat(Array.from({ length: 200 }, () => rawDrainFlow(device.sender, 5))));
  const error = await device.closed;
  const rheaComplaints = stderr.mock.calls.filter((call) => /drain/i.test(String(call[0])));
  stderr.mockRestore();
  expect(error).toMatchObject({ condition: 'amqp:invalid-field' });
  expect(
    logs
      .slice(from)
      .filter((l) => l.level !== 'debug' && l.event.startsWith('amqp.'))
      .map((l) => [l.level, l.event]),
  ).toEqual([['warn', 'amqp.flow']]);
  expect(rheaComplaints).toEqual([]);
  await stillServes('amqp-drain-after');
});
