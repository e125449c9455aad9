// Raw AMQP for what the SDK never sends: rhea as a client (the library the SDK's azure-iot-amqp-base
// uses underneath) and plain TLS bytes for what is not AMQP at all (on any of the TLS ports).
import net from 'node:net';
import tls from 'node:tls';
import { createRegistrationSasToken } from '@dpskit/contracts';
import rhea, { type Connection, type EventContext } from 'rhea';
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
 * Opens an AMQP connection with SASL PLAIN as the SDK does (username `{idScope}/registrations/{id}`,
 * password a SAS token for that id and `key`, unless `password` is given) and resolves once open.
 */
export function connectRheaDevice(
  emulator: Emulator,
  registrationId: string,
  key: string,
  options: { password?: string } = {},
): Promise<RheaDevice> {
  const container = rhea.create_container();
  const connection = container.connect({
    transport: 'tls',
    host: 'localhost',
    port: amqpPort(emulator),
    ca: emulator.caCertPem,
    reconnect: false,
    username: `${emulator.idScope}/registrations/${registrationId}`,
    password: options.password ?? createRegistrationSasToken({ idScope: emulator.idScope, registrationId, key }),
  } as never);
  const closed = new Promise<{ condition?: string; description?: string } | undefined>((resolve) => {
    connection.on('connection_close', (context: EventContext) => resolve(context.connection.error as never));
    connection.on('disconnected', (context: EventContext) => resolve(context.connection.error as never));
  });
  connection.on('connection_error', () => {});
  connection.on('error', () => {});
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve({ connection, closed }));
    connection.once('disconnected', (context: EventContext) => reject(context.error ?? new Error('disconnected')));
  });
}
