import type { Socket } from 'node:net';
import { createRegistrationSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type Delivery, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { afterAll, beforeAll, beforeEach, expect, it, type MockInstance, vi } from 'vitest';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import {
  connectRheaDevice,
  type RheaDevice,
  rawAttach,
  rawBegin,
  rawDisposition,
  rawDrainFlow,
  rawMessageFrames,
  rawPayloadTransfers,
  rawTransfers,
} from '../testing/raw-amqp.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import {
  CREDIT_WINDOW,
  MAX_AMQP_MESSAGE_FRAMES,
  MAX_DISPOSITION_RANGE,
  MAX_LINKS_PER_CONNECTION,
  MAX_SESSIONS_PER_CONNECTION,
  MIN_PEER_IDLE_TIMEOUT_MS,
} from './amqp.js';

// Frames a client may send that rhea takes but tells the console about, once per frame: a message
// section it does not know, a DISPOSITION state that is no delivery state, an ATTACH whose source or
// target is neither, and transfers or drain FLOWs on a link the server refused (it has no credit).
// Repeated, each filled the emulator's stderr (one line each, for as long as the client went on).
// Now the first closes the connection with an AMQP error that names it and one warning through the
// emulator's logger; nothing reaches the console; an SDK device then registers (AMQP and AMQP-WS).

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

const stillServes = async (id: string) => {
  for (const transport of ['amqp', 'amqp-ws'] as const) {
    expect(
      await register(emulator, `${id}-${transport}`, groupDeviceKey('hashed', `${id}-${transport}`), { transport }),
    ).toMatchObject({ status: 'assigned' });
  }
};

interface Device extends RheaDevice {
  address: string;
  sender: Sender;
  receiver: Receiver;
  write(bytes: Buffer): void;
}

/** A raw rhea device with both links attached (its answers not accepted by rhea itself). */
async function openDevice(id: string): Promise<Device> {
  const device = await connectRheaDevice(emulator, id, groupDeviceKey('hashed', id));
  const address = `${emulator.idScope}/registrations/${id}`;
  const receiver = device.connection.open_receiver({ source: { address }, autoaccept: false } as never);
  const sender = device.connection.open_sender({ target: { address } } as never);
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  const socket = (device.connection as unknown as { socket: { write(bytes: Buffer): boolean } }).socket;
  return { ...device, address, sender, receiver, write: (bytes) => socket.write(bytes) };
}

/** The console while `run` runs: what rhea printed (the spies pass everything through). */
async function watchConsole<T>(run: () => Promise<T>): Promise<{ result: T; printed: string[] }> {
  const spies: MockInstance[] = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'error'), vi.spyOn(console, 'log')];
  try {
    const result = await run();
    // A tick for anything rhea prints after the close.
    await new Promise((resolve) => setImmediate(resolve));
    return { result, printed: spies.flatMap((spy) => spy.mock.calls.map((call) => call.map(String).join(' '))) };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

/** The emulator's non-debug `amqp.*` log lines since `from`, as [level, event]. */
const amqpLines = (from: number) =>
  logs
    .slice(from)
    .filter((l) => l.level !== 'debug' && l.event.startsWith('amqp.'))
    .map((l) => [l.level, l.event]);

const lookup: Message = {
  application_properties: { 'iotdps-operation-type': 'iotdps-get-registration' },
  body: '',
} as Message;

it('closes a client whose request has a message section AMQP does not define: amqp:decode-error, one warning, nothing on the console', async () => {
  const device = await openDevice('amqp-odd-section');
  const from = logs.length;
  // A status lookup with one more section after the body: a described value rhea has no unwrapper for.
  const payload = Buffer.concat([rhea.message.encode(lookup), Buffer.from([0x00, 0x53, 0x99, 0x40])]);
  const { result: error, printed } = await watchConsole(async () => {
    // As many as the credit lets through (rhea warned once for each, and credit came back with each answer).
    device.write(Buffer.concat(Array.from({ length: CREDIT_WINDOW }, rawPayloadTransfers(device.sender, payload))));
    return device.closed;
  });
  expect(error).toMatchObject({
    condition: 'amqp:decode-error',
    description: expect.stringContaining('a message section with the descriptor 0x99'),
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.message']]);
  expect(printed).toEqual([]);
  await stillServes('amqp-odd-section-after');
});

it('takes every section AMQP defines, in a request the SDK would not send', async () => {
  const device = await openDevice('amqp-all-sections');
  const from = logs.length;
  const answered = new Promise<{ condition?: string }>((resolve) =>
    device.sender.once('rejected', (context: EventContext) =>
      resolve(context.delivery?.remote_state?.error as { condition?: string }),
    ),
  );
  const { result: error, printed } = await watchConsole(async () => {
    device.sender.send({
      ...lookup,
      header: { durable: false, priority: 4 },
      delivery_annotations: { 'x-opt-a': 1 },
      message_annotations: { 'x-opt-b': 'b' },
      message_id: 'm1',
      footer: { f: 1 },
    } as Message);
    return answered;
  });
  // Not registered yet: the lookup is refused 404, as without the extra sections.
  expect(error.condition).toBe('amqp:not-found');
  expect(amqpLines(from)).toEqual([]);
  expect(printed).toEqual([]);
  device.connection.close();
});

it('closes a client whose DISPOSITION state is no delivery state: amqp:invalid-field, one warning, nothing on the console', async () => {
  const device = await openDevice('amqp-odd-disposition');
  // An answer to settle: the registration's first status (assigning), left unaccepted by the client.
  const delivery = await new Promise<Delivery>((resolve) => {
    device.receiver.once('message', (context: EventContext) => resolve(context.delivery as Delivery));
    device.sender.send({
      application_properties: { 'iotdps-operation-type': 'iotdps-register' },
      body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: 'amqp-odd-disposition' }))),
    } as Message);
  });
  const from = logs.length;
  // A transactional state (DPS has no transactions), 200 times: rhea printed "unrecognised outcome" for each.
  const state = rhea.types.wrap_described(rhea.types.wrap_list([]), 0x34);
  const { result: error, printed } = await watchConsole(async () => {
    device.write(Buffer.concat(Array.from({ length: 200 }, () => rawDisposition(device.receiver, delivery.id, state))));
    return device.closed;
  });
  expect(error).toMatchObject({
    condition: 'amqp:invalid-field',
    description: expect.stringContaining('0x34 is not one of received, accepted, rejected, released, modified'),
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.disposition']]);
  expect(printed).toEqual([]);
  await stillServes('amqp-odd-disposition-after');
});

it('closes a client that attaches a link with a terminus that is neither source nor target: amqp:not-implemented, one warning', async () => {
  const device = await openDevice('amqp-odd-terminus');
  const from = logs.length;
  // A transaction coordinator as target (0x30), on fresh handles: rhea printed "Unknown terminus" for each.
  const source = rhea.types.wrap_described(rhea.types.wrap_list([rhea.types.wrap_string(device.address)]), 0x28);
  const coordinator = rhea.types.wrap_described(rhea.types.wrap_list([]), 0x30);
  const { result: error, printed } = await watchConsole(async () => {
    device.write(
      Buffer.concat(
        Array.from({ length: 20 }, (_, i) => rawAttach(device.sender, `odd-${i}`, 100 + i, source, coordinator)),
      ),
    );
    return device.closed;
  });
  expect(error).toMatchObject({
    condition: 'amqp:not-implemented',
    description: expect.stringContaining('the terminus 0x30 is not served'),
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.link']]);
  expect(printed).toEqual([]);
  await stillServes('amqp-odd-terminus-after');
});

/**
 * A link to another registration's address, which the server refuses (DETACH); resolves once the
 * refusal arrived. The client does not detach its end in answer (rhea would): the link stays
 * attached on its side, as a client that ignores the refusal has it.
 */
function refusedLink(device: Device): Promise<Sender> {
  const other = `${emulator.idScope}/registrations/someone-else`;
  const link = device.connection.open_sender({ target: { address: other } } as never);
  (link as unknown as { close(): void }).close = () => {};
  return new Promise((resolve) => link.once('sender_close', () => resolve(link)));
}

it('closes a client that sends on a link the server refused: amqp:link:transfer-limit-exceeded, one warning', async () => {
  const device = await openDevice('amqp-refused-link-transfers');
  const from = logs.length;
  const { result: error, printed } = await watchConsole(async () => {
    const link = await refusedLink(device);
    // rhea printed "Received transfer when credit was 0" for each, and answered them.
    device.write(Buffer.concat(Array.from({ length: 50 }, rawTransfers(link, lookup))));
    return device.closed;
  });
  expect(error).toMatchObject({
    condition: 'amqp:link:transfer-limit-exceeded',
    description: expect.stringContaining('which the server refused or closed: it has no link credit'),
  });
  expect(amqpLines(from)).toEqual([
    ['warn', 'amqp.link'],
    ['warn', 'amqp.credit'],
  ]);
  expect(printed).toEqual([]);
  await stillServes('amqp-refused-link-transfers-after');
});

it('closes a client that sends drain FLOWs with credit on a link the server refused: amqp:invalid-field, one warning', async () => {
  const device = await openDevice('amqp-refused-link-drain');
  const from = logs.length;
  const { result: error, printed } = await watchConsole(async () => {
    const link = await refusedLink(device);
    device.write(Buffer.concat(Array.from({ length: 50 }, () => rawDrainFlow(link, 5))));
    return device.closed;
  });
  expect(error).toMatchObject({ condition: 'amqp:invalid-field' });
  expect(amqpLines(from)).toEqual([
    ['warn', 'amqp.link'],
    ['warn', 'amqp.flow'],
  ]);
  expect(printed).toEqual([]);
  await stillServes('amqp-refused-link-drain-after');
});

// Frames that cost the server without a bound (b): rhea walks a DISPOSITION's whole range, creates a
// session for every BEGIN and keeps every link until the peer detaches it.

/** The first non-debug `amqp.*` line since `from` once it is logged, or undefined once the client is gone. */
async function firstAmqpLine(from: number, device: Device): Promise<LogRecord | undefined> {
  let gone = false;
  void device.closed.then(() => {
    gone = true;
  });
  for (;;) {
    const line = logs.slice(from).find((l) => l.level !== 'debug' && l.event.startsWith('amqp.'));
    if (line || gone) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

it(`closes a client whose DISPOSITION names more than ${MAX_DISPOSITION_RANGE} deliveries: amqp:invalid-field, one warning`, async () => {
  const device = await openDevice('amqp-wide-disposition');
  const from = logs.length;
  // Every delivery id there is: rhea looked each one up, the event loop still busy after 20 s.
  const accepted = (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described();
  device.write(rawDisposition(device.receiver, 0, accepted, 0xffff_ffff));
  const error = await device.closed;
  expect(error).toMatchObject({
    condition: 'amqp:invalid-field',
    description: expect.stringContaining(`at most ${MAX_DISPOSITION_RANGE} deliveries`),
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.disposition']]);
  await stillServes('amqp-wide-disposition-after');
});

it(`closes a client that begins more than ${MAX_SESSIONS_PER_CONNECTION} sessions: amqp:resource-limit-exceeded, one warning`, async () => {
  const device = await openDevice('amqp-many-sessions');
  const from = logs.length;
  // 2,000 BEGINs (20,000 cost the old server 4.3 s of CPU and 106 MB). The client's rhea gives up at
  // the server's first answer to a BEGIN it did not send, so the close is read from the server's log.
  device.write(Buffer.concat(Array.from({ length: 2_000 }, (_, i) => rawBegin(1 + i))));
  const line = await firstAmqpLine(from, device);
  expect(line).toMatchObject({ level: 'warn', event: 'amqp.session', condition: 'amqp:resource-limit-exceeded' });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.session']]);
  await stillServes('amqp-many-sessions-after');
});

it(`closes a client that attaches more than ${MAX_LINKS_PER_CONNECTION} links: amqp:resource-limit-exceeded, one warning`, async () => {
  const device = await openDevice('amqp-many-links');
  const from = logs.length;
  // Links the client never detaches, on fresh handles (the old server refused each past the limit and
  // kept it: 20,000 cost 5.2 s of CPU and 117 MB).
  const target = rhea.types.wrap_described(rhea.types.wrap_list([rhea.types.wrap_string(device.address)]), 0x29);
  device.write(
    Buffer.concat(
      Array.from({ length: 2_000 }, (_, i) => rawAttach(device.sender, `extra-${i}`, 100 + i, null, target)),
    ),
  );
  const line = await firstAmqpLine(from, device);
  expect(line).toMatchObject({ level: 'warn', event: 'amqp.link', condition: 'amqp:resource-limit-exceeded' });
  await device.closed;
  expect(amqpLines(from)).toEqual([['warn', 'amqp.link']]);
  await stillServes('amqp-many-links-after');
});

it('closes a client that settles an answer the server has not sent yet: amqp:invalid-field, one warning, nothing on the console', async () => {
  const id = 'amqp-settles-unsent';
  const device = await connectRheaDevice(emulator, id, groupDeviceKey('hashed', id));
  const address = `${emulator.idScope}/registrations/${id}`;
  // A receiver link that grants no credit: the server's answers wait unsent in its session.
  const receiver = device.connection.open_receiver({
    source: { address },
    credit_window: 0,
    autoaccept: false,
  } as never);
  const sender = device.connection.open_sender({ target: { address } } as never);
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  const socket = (device.connection as unknown as { socket: { write(bytes: Buffer): boolean } }).socket;
  // The register is accepted in the same turn its answer (delivery 0) is queued.
  await new Promise<void>((resolve) => {
    sender.once('accepted', () => resolve());
    sender.send({
      application_properties: { 'iotdps-operation-type': 'iotdps-register' },
      body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: id }))),
    } as Message);
  });
  const from = logs.length;
  const accepted = (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described();
  const { result, printed } = await watchConsole(async () => {
    // rhea dropped the answer unsent and from then on printed "Next pending delivery not found" at
    // every write: here, the refusal of each of five status lookups (not registered yet: 404).
    socket.write(rawDisposition(receiver, 0, accepted, undefined, true));
    const lookups = new Promise<void>((resolve) => {
      let refusals = 0;
      sender.on('rejected', () => {
        refusals += 1;
        if (refusals === 5) resolve();
      });
    });
    for (let i = 0; i < 5; i++) sender.send(lookup);
    return Promise.race([device.closed.then((error) => ({ error })), lookups.then(() => ({ error: 'answered' }))]);
  });
  expect(result.error).toMatchObject({
    condition: 'amqp:invalid-field',
    description: 'A DISPOSITION settles delivery 0, which the server has not sent yet.',
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.disposition']]);
  expect(printed).toEqual([]);
  await stillServes('amqp-settles-unsent-after');
});

it(`closes a client that asks for an idle-time-out under ${MIN_PEER_IDLE_TIMEOUT_MS} ms: amqp:invalid-field, one warning`, async () => {
  const id = 'amqp-tiny-idle';
  const from = logs.length;
  // rhea sent an empty frame every half of the client's idle-time-out, however short: 2 ms here.
  const connection = rhea.create_container().connect({
    transport: 'tls',
    host: 'localhost',
    port: emulator.endpoints.amqp?.port,
    ca: emulator.caCertPem,
    reconnect: false,
    idle_time_out: 2,
    username: `${emulator.idScope}/registrations/${id}`,
    password: createRegistrationSasToken({
      idScope: emulator.idScope,
      registrationId: id,
      key: groupDeviceKey('hashed', id),
    }),
  } as never);
  // This client does not hold the server to its own 2 ms (rhea would close it when a heartbeat is late).
  (connection as unknown as { idle(): void }).idle = () => {};
  connection.on('error', () => {});
  connection.on('connection_error', () => {});
  const outcome = await new Promise<{ condition?: string; description?: string } | 'heartbeats'>((resolve) => {
    connection.on('connection_close', (context: EventContext) => resolve(context.connection.error as never));
    connection.once('connection_open', () => {
      // What the old server wrote next: empty frames, one every millisecond or so, for as long as it was open.
      let reads = 0;
      (connection as unknown as { socket: Socket }).socket.on('data', () => {
        reads += 1;
        if (reads === 100) resolve('heartbeats');
      });
    });
  });
  expect(outcome).toMatchObject({
    condition: 'amqp:invalid-field',
    description: expect.stringContaining(`An idle-time-out of 2 ms is below the ${MIN_PEER_IDLE_TIMEOUT_MS} ms`),
  });
  expect(amqpLines(from)).toEqual([['warn', 'amqp.open']]);
  connection.close();
  await stillServes('amqp-tiny-idle-after');
});

it(`closes the link of a message sent in more than ${MAX_AMQP_MESSAGE_FRAMES} frames, as one over the size limit`, async () => {
  const device = await openDevice('amqp-many-frames');
  const from = logs.length;
  const closedLink = new Promise<{ condition?: string; description?: string }>((resolve) =>
    device.sender.once('sender_close', (context: EventContext) => resolve(context.sender?.error as never)),
  );
  // 2,000 frames of a byte each, far under the size limit: rhea gathered them all (the old server
  // counted only bytes), each payload holding the chunk it came in.
  device.write(
    rawMessageFrames(
      device.sender,
      Array.from({ length: 2_000 }, () => Buffer.from([0x00])),
      true,
    ),
  );
  expect(await closedLink).toMatchObject({
    condition: 'amqp:link:message-size-exceeded',
    description: expect.stringContaining(`in at most ${MAX_AMQP_MESSAGE_FRAMES} transfer frames`),
  });
  const line = logs.slice(from).find((l) => l.event === 'amqp.message');
  expect(line).toMatchObject({ level: 'warn', frames: MAX_AMQP_MESSAGE_FRAMES + 1 });
  // The frames after the cut, on a link the server has closed, close the connection.
  expect(await device.closed).toMatchObject({ condition: 'amqp:link:transfer-limit-exceeded' });
  expect(amqpLines(from)).toEqual([
    ['warn', 'amqp.message'],
    ['warn', 'amqp.credit'],
  ]);
  await stillServes('amqp-many-frames-after');
});

it(`still takes a message in ${MAX_AMQP_MESSAGE_FRAMES} frames`, async () => {
  const id = 'amqp-split-request';
  const device = await openDevice(id);
  const from = logs.length;
  // A register request (with a payload, so that no piece is empty) cut into MAX_AMQP_MESSAGE_FRAMES pieces.
  const bytes = rhea.message.encode({
    application_properties: { 'iotdps-operation-type': 'iotdps-register' },
    body: rhea.message.data_section(
      Buffer.from(JSON.stringify({ registrationId: id, payload: { note: 'x'.repeat(MAX_AMQP_MESSAGE_FRAMES) } })),
    ),
  } as Message) as Buffer;
  const cut = (i: number) => Math.floor((i * bytes.length) / MAX_AMQP_MESSAGE_FRAMES);
  const pieces = Array.from({ length: MAX_AMQP_MESSAGE_FRAMES }, (_, i) => bytes.subarray(cut(i), cut(i + 1)));
  const answer = new Promise<{ status?: string }>((resolve) =>
    device.receiver.once('message', (context: EventContext) =>
      resolve(JSON.parse(String((context.message?.body as { content?: Buffer } | undefined)?.content))),
    ),
  );
  device.write(rawMessageFrames(device.sender, pieces));
  expect(await answer).toMatchObject({ status: 'assigning' });
  expect(amqpLines(from)).toEqual([]);
  device.connection.close();
});
