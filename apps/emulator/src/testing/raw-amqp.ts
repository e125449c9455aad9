// Raw AMQP for what the SDK never sends: rhea as a client (the library the SDK's azure-iot-amqp-base
// uses underneath) and plain TLS bytes for what is not AMQP at all (on any of the TLS ports).
import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { createRegistrationSasToken } from '@dpskit/contracts';
import rhea, { type Connection, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import type { Emulator } from '../emulator.js';

function amqpPort(emulator: Emulator): number {
  const endpoint = emulator.endpoints.amqp;
  if (!endpoint) throw new Error('the emulator runs without AMQP');
  return endpoint.port;
}

/** Writes `bytes` over TLS to the AMQP port and resolves with everything received until the server closes. */
export function rawAmqpExchange(emulator: Emulator, bytes: Buffer): Promise<Buffer> {
  return rawTlsExchange(emulator, amqpPort(emulator), bytes);
}

/** Writes `bytes` over TLS to `port` and resolves with everything received until the server closes. */
export function rawTlsExchange(emulator: Emulator, port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: 'localhost', port, ca: emulator.caCertPem }, () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Plain TCP (no TLS) to the AMQP port; resolves when the server closes. */
export function plainTcpToAmqpPort(emulator: Emulator, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: amqpPort(emulator) }, () => socket.write(bytes));
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });
}

export interface RheaDevice {
  connection: Connection;
  /** The error the server closed the connection with, once it did. */
  closed: Promise<{ condition?: string; description?: string } | undefined>;
}

/**
 * An AMQP connection over TLS to `port` with rhea, being opened (`options`: SASL PLAIN's `username`
 * and `password`, a client `cert` and `key`, or nothing: the bare AMQP header, as
 * azure-iot-amqp-base sends for a hub). Its errors are swallowed: tests read what they expect from
 * the events, whose listeners can be added before any frame is read.
 */
export function rheaConnect(port: number, ca: string, options: Record<string, unknown> = {}): Connection {
  const connection = rhea
    .create_container()
    .connect({ transport: 'tls', host: 'localhost', port, ca, reconnect: false, ...options } as never);
  connection.on('connection_error', () => {});
  connection.on('error', () => {});
  return connection;
}

/** Resolves with `connection` once open; rejects if the server ends it before. */
export function whenOpen(connection: Connection): Promise<Connection> {
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(connection));
    connection.once('disconnected', (context: EventContext) => reject(context.error ?? new Error('disconnected')));
  });
}

/** `rheaConnect` then `whenOpen`: an open AMQP connection. */
export function openRheaConnection(
  port: number,
  ca: string,
  options: Record<string, unknown> = {},
): Promise<Connection> {
  return whenOpen(rheaConnect(port, ca, options));
}

/**
 * Opens an AMQP connection with SASL PLAIN as the SDK does (username `{idScope}/registrations/{id}`,
 * password a SAS token for that id and `key`, unless `password` is given) and resolves once open.
 */
export async function connectRheaDevice(
  emulator: Emulator,
  registrationId: string,
  key: string,
  options: { password?: string } = {},
): Promise<RheaDevice> {
  const connection = rheaConnect(amqpPort(emulator), emulator.caCertPem, {
    username: `${emulator.idScope}/registrations/${registrationId}`,
    password: options.password ?? createRegistrationSasToken({ idScope: emulator.idScope, registrationId, key }),
  });
  const closed = new Promise<{ condition?: string; description?: string } | undefined>((resolve) => {
    connection.on('connection_close', (context: EventContext) => resolve(context.connection.error as never));
    connection.on('disconnected', (context: EventContext) => resolve(context.connection.error as never));
  });
  return { connection: await whenOpen(connection), closed };
}

// rhea's frame encoders (not in its typings): rawTransfers writes transfers itself, as rhea's own
// session would not send one without credit and a free session window.
const require = createRequire(import.meta.url);
const rheaLib = require.resolve('rhea').replace(/container\.js$/, '');
const frames = require(`${rheaLib}frames.js`) as {
  transfer(fields: Record<string, unknown>): unknown;
  flow(fields: Record<string, unknown>): unknown;
  attach(fields: Record<string, unknown>): unknown;
  disposition(fields: Record<string, unknown>): unknown;
  begin(fields: Record<string, unknown>): unknown;
  open(fields: Record<string, unknown>): unknown;
  end(fields: Record<string, unknown>): unknown;
  detach(fields: Record<string, unknown>): unknown;
  close(fields: Record<string, unknown>): unknown;
  sasl_init(fields: Record<string, unknown>): unknown;
  sasl_frame(performative: unknown): unknown;
  read_frame(buffer: Buffer): { type: number; channel: number; performative?: object } | null;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): unknown;
  write_frame(frame: unknown): Buffer;
};

/**
 * A writer of TRANSFER frames of `message` on `sender`'s link, each a new delivery, with delivery
 * ids on from where rhea's session left them: for the socket, bypassing rhea's credit and session
 * window (rhea itself would send none without credit it learns of by reading).
 */
export function rawTransfers(sender: Sender, message: Message): () => Buffer {
  return rawPayloadTransfers(sender, rhea.message.encode(message));
}

/**
 * A FLOW frame on `sender`'s link with `drain` set and `linkCredit` credit: what a sender never sends
 * (drain is the receiver's to ask for; a sender answers it with no credit left), for the socket.
 */
export function rawDrainFlow(sender: Sender, linkCredit: number): Buffer {
  const session = (
    sender as unknown as {
      session: {
        local: { channel: number };
        incoming: { next_transfer_id: number; window: number };
        outgoing: { next_transfer_id: number; window: number };
      };
    }
  ).session;
  const link = sender as unknown as { local: { handle: number }; delivery_count: number };
  return frames.write_frame(
    frames.amqp_frame(
      session.local.channel,
      frames.flow({
        next_incoming_id: session.incoming.next_transfer_id,
        incoming_window: session.incoming.window,
        next_outgoing_id: session.outgoing.next_transfer_id,
        outgoing_window: session.outgoing.window,
        handle: link.local.handle,
        delivery_count: link.delivery_count,
        link_credit: linkCredit,
        drain: true,
      }),
    ),
  );
}

/** The session channel of a link rhea opened (its frames go on it). */
function channelOf(link: Sender | Receiver): number {
  return (link as unknown as { session: { local: { channel: number } } }).session.local.channel;
}

/**
 * TRANSFER frames of `payload` (a message's bytes as they are, format 0) on `sender`'s link, each
 * a new delivery, as `rawTransfers`: also for a message rhea's own encoder would not write.
 */
export function rawPayloadTransfers(sender: Sender, payload: Buffer): () => Buffer {
  const session = (sender as unknown as { session: { outgoing: { next_delivery_id: number } } }).session;
  const handle = (sender as unknown as { local: { handle: number } }).local.handle;
  let deliveryId = session.outgoing.next_delivery_id;
  return () =>
    frames.write_frame(
      frames.amqp_frame(
        channelOf(sender),
        frames.transfer({
          handle,
          delivery_id: deliveryId,
          delivery_tag: Buffer.from(String(deliveryId++)),
          message_format: 0,
        }),
        payload,
      ),
    );
}

/**
 * An ATTACH frame on `link`'s session for a new link `name` on `handle` where the client sends
 * (role sender), with `source` and `target` as given (rhea-typed values): for the socket.
 */
export function rawAttach(
  link: Sender | Receiver,
  name: string,
  handle: number,
  source: unknown,
  target: unknown,
): Buffer {
  return frames.write_frame(
    frames.amqp_frame(
      channelOf(link),
      frames.attach({ name, handle, role: false, source, target, initial_delivery_count: 0 }),
    ),
  );
}

/**
 * A DISPOSITION frame from `receiver`'s side (role receiver) for delivery `deliveryId` (to `last`,
 * when given) with `state`, unsettled unless `settled`.
 */
export function rawDisposition(
  receiver: Receiver,
  deliveryId: number,
  state: unknown,
  last?: number,
  settled = false,
): Buffer {
  return frames.write_frame(
    frames.amqp_frame(channelOf(receiver), frames.disposition({ role: true, first: deliveryId, last, settled, state })),
  );
}

/** A BEGIN frame on `channel` that opens a new session (no remote channel), for the socket. */
export function rawBegin(channel: number): Buffer {
  return frames.write_frame(
    frames.amqp_frame(channel, frames.begin({ next_outgoing_id: 0, incoming_window: 2048, outgoing_window: 2048 })),
  );
}

/**
 * One message's TRANSFER frames on `sender`'s link, a frame for each of `payloads` (the next
 * delivery id; `more` set on all but the last, unless `unfinished`): a message split into pieces as
 * no SDK splits it, for the socket.
 */
export function rawMessageFrames(sender: Sender, payloads: Buffer[], unfinished = false): Buffer {
  const session = (sender as unknown as { session: { outgoing: { next_delivery_id: number } } }).session;
  const handle = (sender as unknown as { local: { handle: number } }).local.handle;
  const deliveryId = session.outgoing.next_delivery_id;
  return Buffer.concat(
    payloads.map((payload, i) => {
      const more = unfinished || i < payloads.length - 1;
      const first = i === 0 ? { delivery_id: deliveryId, delivery_tag: Buffer.from('m'), message_format: 0 } : {};
      return frames.write_frame(
        frames.amqp_frame(channelOf(sender), frames.transfer({ handle, ...first, more }), payload),
      );
    }),
  );
}

/** An AMQP `error` as a frame field (rhea encodes the object). */
export interface AmqpErrorField {
  condition: string;
  description?: string;
}

/** Frames a raw client writes after SASL and its OPEN (see `rawAmqpConversation`), for the socket. */
export const rawFrame = {
  begin: (channel: number) => rawBegin(channel),
  attach: (channel: number, name: string, handle: number, role: boolean, address: string) =>
    frames.write_frame(
      frames.amqp_frame(
        channel,
        frames.attach({
          name,
          handle,
          role,
          source: rhea.types.wrap_described(rhea.types.wrap_list([rhea.types.wrap_string(address)]), 0x28),
          target: rhea.types.wrap_described(rhea.types.wrap_list([rhea.types.wrap_string(address)]), 0x29),
          initial_delivery_count: role ? undefined : 0,
        }),
      ),
    ),
  detach: (channel: number, handle: number, error?: AmqpErrorField) =>
    frames.write_frame(frames.amqp_frame(channel, frames.detach({ handle, closed: true, error }))),
  end: (channel: number, error?: AmqpErrorField) =>
    frames.write_frame(frames.amqp_frame(channel, frames.end({ error }))),
  close: () => frames.write_frame(frames.amqp_frame(0, frames.close({}))),
};

/** A frame the server wrote: its performative's name (`open`, `end`, …), channel and fields. */
export interface ReceivedFrame {
  name: string;
  channel: number;
  fields: Record<string, unknown>;
}

/**
 * One AMQP connection in raw bytes, as no library would drive it: the SASL header and a SASL PLAIN
 * init as the SDK's (username `{idScope}/registrations/{id}`, a SAS token for it); once the SASL
 * outcome is in (rhea does not read an AMQP header that comes in the same chunk as the SASL init),
 * the AMQP header, an OPEN, then `after`, in one write. Resolves, once the server closes the socket,
 * with every frame it wrote after its AMQP header (OPEN first), decoded with rhea's frame reader.
 */
export function rawAmqpConversation(
  emulator: Emulator,
  registrationId: string,
  key: string,
  after: Buffer[],
): Promise<ReceivedFrame[]> {
  const username = `${emulator.idScope}/registrations/${registrationId}`;
  const password = createRegistrationSasToken({ idScope: emulator.idScope, registrationId, key });
  const header = (id: number) => Buffer.from([0x41, 0x4d, 0x51, 0x50, id, 1, 0, 0]);
  const sasl = Buffer.concat([
    header(3),
    frames.write_frame(
      frames.sasl_frame(
        frames.sasl_init({ mechanism: 'PLAIN', initial_response: Buffer.from(`\0${username}\0${password}`) }),
      ),
    ),
  ]);
  const amqp = Buffer.concat([
    header(0),
    frames.write_frame(frames.amqp_frame(0, frames.open({ container_id: 'raw-client' }))),
    ...after,
  ]);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let saslDone = false;
    const socket = tls.connect({ host: 'localhost', port: amqpPort(emulator), ca: emulator.caCertPem }, () =>
      socket.write(sasl),
    );
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // The SASL outcome (descriptor 0x44) is the last SASL frame the server writes.
      if (!saslDone && Buffer.concat(chunks).includes(Buffer.from([0x00, 0x53, 0x44]))) {
        saslDone = true;
        chunks.length = 0;
        socket.write(amqp);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(readFrames(Buffer.concat(chunks))));
  });
}

/** The AMQP frames in `bytes` (protocol headers and SASL frames skipped; an incomplete tail ignored). */
function readFrames(bytes: Buffer): ReceivedFrame[] {
  const out: ReceivedFrame[] = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    if (bytes.toString('latin1', at, at + 4) === 'AMQP') {
      at += 8;
      continue;
    }
    const size = bytes.readUInt32BE(at);
    if (at + size > bytes.length) break;
    const frame = frames.read_frame(bytes.subarray(at, at + size));
    at += size;
    if (frame?.type !== 0 || !frame.performative) continue; // SASL, or an empty (heartbeat) frame
    // rhea's performatives read their fields through accessors on the prototype (toJSON leaves out 0 and false).
    const performative = frame.performative as Record<string, unknown>;
    const names = Object.getOwnPropertyNames(Object.getPrototypeOf(performative)).filter(
      (name) => typeof performative[name] !== 'function',
    );
    out.push({
      name: String(performative.constructor).split('#')[0] ?? '',
      channel: frame.channel,
      fields: Object.fromEntries(names.map((name) => [name, performative[name]])),
    });
  }
  return out;
}

/**
 * The SASL header and one SASL init with `mechanism` (no credentials: ANONYMOUS, as a client
 * without a password sends it) over TLS to the AMQP port; resolves with the SASL outcome's code
 * (0 ok, 1 auth), then closes the socket (rhea answers and waits for the client to go).
 */
export function rawSaslInit(emulator: Emulator, mechanism: string): Promise<number | undefined> {
  const init = Buffer.concat([
    Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]),
    frames.write_frame(frames.sasl_frame(frames.sasl_init({ mechanism }))),
  ]);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: 'localhost', port: amqpPort(emulator), ca: emulator.caCertPem }, () =>
      socket.write(init),
    );
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      // The server's SASL header, then its frames: the mechanisms, then the outcome.
      for (let at = 8; at + 8 <= bytes.length; ) {
        const size = bytes.readUInt32BE(at);
        if (at + size > bytes.length) break;
        const performative = frames.read_frame(bytes.subarray(at, at + size))?.performative as
          | { code?: number }
          | undefined;
        at += size;
        if (performative?.code !== undefined) {
          socket.destroy();
          resolve(performative.code);
          return;
        }
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(undefined));
  });
}
