import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type EventContext, type Receiver, type Sender, type Session } from 'rhea';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import { connectRheaDevice, rawAmqpConversation, rawDisposition, rawFrame, rawTransfers } from '../testing/raw-amqp.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';

// A client may end a session or detach a link with an error (AMQP 1.0 2.7.5 DETACH, 2.7.7 END: "if
// set, this field indicates that the session is being ended due to an error condition"). The
// server answers it as any END or DETACH and the connection goes on serving its other sessions and
// links. rhea raises a peer's END error as an 'error' on its container when nothing listens for
// `session_error`; thrown inside its frame reader, that closed the whole connection as
// `amqp:decode-error` ("The frame could not be decoded: <the client's description>").

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

const trouble = { condition: 'amqp:internal-error', description: 'the client gave up on this session' };

/** The emulator's `amqp.*` log lines at info and above since `from`, as [level, event]. */
const amqpLines = (from: number) =>
  logs
    .slice(from)
    .filter((l) => l.level !== 'debug' && l.event.startsWith('amqp.'))
    .map((l) => [l.level, l.event]);

it('answers a session END that carries an error with END and keeps the connection (raw frames)', async () => {
  const id = 'amqp-end-error-raw';
  const from = logs.length;
  const frames = await rawAmqpConversation(emulator, id, groupDeviceKey('hashed', id), [
    rawFrame.begin(0),
    rawFrame.end(0, trouble),
    // The connection still serves: another session begins and ends, then the client closes.
    rawFrame.begin(1),
    rawFrame.end(1),
    rawFrame.close(),
  ]);
  // rhea answers an END on the next tick, after the rest of the chunk: the order of the two
  // sessions' frames is rhea's; each BEGIN is answered, each END too, and no CLOSE comes before the client's.
  const names = frames.map((f) => f.name);
  expect(names[0]).toBe('open');
  expect(names.at(-1)).toBe('close');
  expect([...names].sort()).toEqual(['begin', 'begin', 'close', 'end', 'end', 'open']);
  expect(frames.filter((f) => f.name === 'begin').map((f) => f.fields.remote_channel)).toEqual([0, 1]);
  // The server's END and CLOSE carry no error of their own: the error was the client's.
  expect(frames.filter((f) => f.name === 'end' || f.name === 'close').map((f) => f.fields.error)).toEqual([
    undefined,
    undefined,
    undefined,
  ]);
  expect(amqpLines(from)).toEqual([]);
  const line = logs.slice(from).find((l) => l.event === 'amqp.session');
  expect(line).toMatchObject({ level: 'debug', condition: 'amqp:internal-error' });
});

it('answers a link DETACH that carries an error with DETACH and keeps the session (raw frames)', async () => {
  const id = 'amqp-detach-error-raw';
  const address = `${emulator.idScope}/registrations/${id}`;
  const from = logs.length;
  const frames = await rawAmqpConversation(emulator, id, groupDeviceKey('hashed', id), [
    rawFrame.begin(0),
    rawFrame.attach(0, 'requests', 0, false, address),
    rawFrame.detach(0, 0, trouble),
    rawFrame.attach(0, 'requests-again', 1, false, address),
    rawFrame.detach(0, 1),
    rawFrame.end(0),
    rawFrame.close(),
  ]);
  // Each link's ATTACH and DETACH answered in turn (rhea answers a DETACH on the next tick, so
  // the two links' frames may interleave), the session's END and the CLOSE last.
  const names = frames.filter((f) => f.name !== 'flow').map((f) => f.name);
  const ofLink = (handle: number) =>
    frames.filter((f) => (f.name === 'attach' || f.name === 'detach') && f.fields.handle === handle).map((f) => f.name);
  expect(names.slice(0, 2)).toEqual(['open', 'begin']);
  expect(names.slice(-2)).toEqual(['end', 'close']);
  expect(names).toHaveLength(8);
  expect(ofLink(0)).toEqual(['attach', 'detach']);
  expect(ofLink(1)).toEqual(['attach', 'detach']);
  expect(frames.filter((f) => f.name === 'detach').map((f) => f.fields.error)).toEqual([undefined, undefined]);
  expect(amqpLines(from)).toEqual([]);
});

it("takes a rhea client's session END and link DETACH with errors, then registers on the same connection", async () => {
  const id = 'amqp-end-error-rhea';
  const device = await connectRheaDevice(emulator, id, groupDeviceKey('hashed', id));
  const address = `${emulator.idScope}/registrations/${id}`;
  const from = logs.length;
  const connection = device.connection as typeof device.connection & { create_session(): Session };

  // A session with both of a device's links, ended with an error.
  const session = connection.create_session();
  session.on('session_error', () => {});
  await new Promise<void>((resolve) => {
    session.once('session_open', () => resolve());
    session.begin();
  });
  session.open_receiver({ source: { address } } as never);
  const doomed = session.open_sender({ target: { address } } as never) as Sender;
  await new Promise<void>((resolve) => doomed.once('sendable', () => resolve()));
  const ended = new Promise<unknown>((resolve) =>
    session.once('session_close', (context: EventContext) => resolve(context.session?.error)),
  );
  session.close(trouble);
  // The server's END (without an error) ends the session, not the connection's CLOSE.
  const first = await Promise.race([
    ended.then((error) => ({ ended: error })),
    device.closed.then((e) => ({ closed: e })),
  ]);
  expect(first).toEqual({ ended: undefined });

  // A link detached with an error on a new session is answered with a DETACH; the session stays.
  const receiver = connection.open_receiver({ source: { address }, autoaccept: true } as never) as Receiver;
  const sender = connection.open_sender({ target: { address } } as never) as Sender;
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  const extra = connection.open_sender({ target: { address } } as never) as Sender;
  await new Promise<void>((resolve) => extra.once('sendable', () => resolve()));
  extra.on('sender_error', () => {});
  const detached = new Promise<unknown>((resolve) =>
    extra.once('sender_close', (context: EventContext) => resolve(context.sender?.error)),
  );
  extra.close(trouble);
  expect(await detached).toBeUndefined();

  // The connection still answers a request: a registration, on the links of the new session.
  const answer = new Promise<unknown>((resolve) =>
    receiver.once('message', (context: EventContext) => resolve(context.message?.correlation_id)),
  );
  sender.send(registerRequest(id, 'after-errors'));
  const answered = await Promise.race([answer, device.closed.then((e) => ({ closed: e }))]);
  expect(answered).toBe('after-errors');
  expect(connection.is_open()).toBe(true);
  expect(amqpLines(from)).toEqual([]);
  connection.close();
  await device.closed;

  for (const transport of ['amqp', 'amqp-ws'] as const) {
    const sdkId = `${id}-sdk-${transport}`;
    expect(await register(emulator, sdkId, groupDeviceKey('hashed', sdkId), { transport })).toMatchObject({
      status: 'assigned',
    });
  }
});

// Frames that decode but that the connection's state does not allow close the connection with the
// condition AMQP 1.0 names (2.8.15, 2.8.16), not amqp:decode-error, which said the frame could not
// be read: a DETACH naming a handle no link is attached on, a second END, an END on a channel no
// session was begun on.
it('closes with amqp:session:unattached-handle or amqp:illegal-state, not amqp:decode-error, for a frame its state does not allow', async () => {
  const id = 'amqp-illegal-state';
  const cases = {
    unattached: {
      frames: [rawFrame.begin(0), rawFrame.detach(0, 7, trouble)],
      condition: 'amqp:session:unattached-handle',
    },
    endTwice: {
      frames: [rawFrame.begin(0), rawFrame.end(0, trouble), rawFrame.end(0)],
      condition: 'amqp:illegal-state',
    },
    endUnbegun: { frames: [rawFrame.end(3)], condition: 'amqp:illegal-state' },
  };
  const seen: Record<string, unknown> = {};
  const from = logs.length;
  for (const [name, { frames }] of Object.entries(cases)) {
    // Each connection's warning logged in full: one in full a second of the log's clock.
    clock.nextSecond();
    const received = await rawAmqpConversation(
      emulator,
      `${id}-${name}`,
      groupDeviceKey('hashed', `${id}-${name}`),
      frames,
    );
    seen[name] = received.at(-1);
  }
  expect(seen).toEqual(
    Object.fromEntries(
      Object.entries(cases).map(([name, { condition }]) => [
        name,
        expect.objectContaining({
          name: 'close',
          fields: expect.objectContaining({
            error: expect.objectContaining({
              condition,
              description: expect.stringMatching(/^A frame the connection's state does not allow: /),
            }),
          }),
        }),
      ]),
    ),
  );
  expect(
    logs
      .slice(from)
      .filter((l) => l.event === 'amqp.protocol')
      .map((l) => [l.level, l.kind]),
  ).toEqual([
    ['warn', 'illegal-state'],
    ['warn', 'illegal-state'],
    ['warn', 'illegal-state'],
  ]);
  for (const transport of ['amqp', 'amqp-ws'] as const) {
    const sdkId = `${id}-sdk-${transport}`;
    expect(await register(emulator, sdkId, groupDeviceKey('hashed', sdkId), { transport })).toMatchObject({
      status: 'assigned',
    });
  }
});

// A client that closes a receiver while the server's next message is on the wire still takes that
// message (its session lives until the server's END comes back) and rhea settles it: a DISPOSITION
// after the client's own END, which the server's rhea, having forgotten the session, called
// "disposition received on invalid channel" and which closed the whole connection. An
// EventHubConsumerClient closing its partition receivers met it under CPU load, and its close()
// then hung 60 s on its $cbs link (rhea-promise waits for the link's DETACH, not a peer's CLOSE).
// Such frames are dropped now (as Microsoft.Azure.Amqp drops frames on a channel with no session);
// on a channel the client never began they still close the connection.
it('drops what a client sends on a session it has ended (a message settled after its END) and serves on', async () => {
  const id = 'amqp-late-frames';
  const device = await connectRheaDevice(emulator, id, groupDeviceKey('hashed', id));
  const address = `${emulator.idScope}/registrations/${id}`;
  const from = logs.length;
  const connection = device.connection as typeof device.connection & { create_session(): Session };
  const socket = (connection as unknown as { socket: { write(bytes: Buffer): boolean } }).socket;

  // A session with a device's links and a request whose answer the client holds unsettled.
  const session = connection.create_session();
  await new Promise<void>((resolve) => {
    session.once('session_open', () => resolve());
    session.begin();
  });
  const receiver = session.open_receiver({ source: { address }, autoaccept: false } as never) as Receiver;
  const sender = session.open_sender({ target: { address } } as never) as Sender;
  await new Promise<void>((resolve) => sender.once('sendable', () => resolve()));
  const answer = new Promise<{ id: number }>((resolve) =>
    receiver.once('message', (context: EventContext) => resolve(context.delivery as unknown as { id: number })),
  );
  sender.send(registerRequest(id, 'before-end'));
  const held = await answer;

  // The client ends the session and the server's END comes back: both ends are done with it.
  const ended = new Promise<void>((resolve) => session.once('session_close', () => resolve()));
  session.close();
  await ended;
  // What the client still sends there: the answer settled, a message, its links' DETACH, an END.
  const accepted = (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described();
  const channel = (session as unknown as { local: { channel: number } }).local.channel;
  socket.write(
    Buffer.concat([
      rawDisposition(receiver, held.id, accepted, undefined, true),
      rawTransfers(sender, registerRequest(id, 'after-end'))(),
      rawFrame.detach(channel, 0),
      rawFrame.end(channel),
    ]),
  );

  // The connection serves on: a registration on a new session is answered (the server's CLOSE, had
  // it closed the connection instead, is what the race below would give).
  const orClosed = <T>(promise: Promise<T>) => Promise.race([promise, device.closed.then((e) => ({ closed: e }))]);
  const again = connection.open_receiver({ source: { address }, autoaccept: true } as never) as Receiver;
  const next = connection.open_sender({ target: { address } } as never) as Sender;
  expect(await orClosed(new Promise<string>((resolve) => next.once('sendable', () => resolve('sendable'))))).toBe(
    'sendable',
  );
  const answered = new Promise<unknown>((resolve) =>
    again.once('message', (context: EventContext) => resolve(context.message?.correlation_id)),
  );
  next.send(registerRequest(id, 'on-a-new-session'));
  expect(await orClosed(answered)).toBe('on-a-new-session');
  expect(connection.is_open()).toBe(true);
  expect(amqpLines(from)).toEqual([]);
  // One debug line for the ended channel, not one a frame.
  expect(logs.slice(from).filter((l) => l.event === 'amqp.session')).toEqual([
    expect.objectContaining({
      level: 'debug',
      channel,
      msg: expect.stringContaining(`a DISPOSITION on channel ${channel}, whose session the client ended; dropped`),
    }),
  ]);

  // A frame on a channel the client never began still closes the connection.
  socket.write(rawFrame.end(42));
  expect(await device.closed).toMatchObject({ condition: 'amqp:illegal-state' });
});

/** A DPS register request (the SDK's application property and body) with `correlationId`. */
function registerRequest(registrationId: string, correlationId: string): rhea.Message {
  return {
    correlation_id: correlationId,
    application_properties: { 'iotdps-operation-type': 'iotdps-register' },
    body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId }))),
  } as never;
}
