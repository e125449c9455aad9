import tls from 'node:tls';
import { generateSymmetricKey } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type EventContext } from 'rhea';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { createTestCa, createTestDeviceCertificate, pemChain } from '../testing/certificates.js';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import { connectRheaDevice, openRheaConnection, plainTcpToAmqpPort, rawAmqpExchange } from '../testing/raw-amqp.js';
import { closeOf, openWebSocket } from '../testing/raw-websocket.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_AMQP_MESSAGE_BYTES } from './amqp.js';

// What the SDK never sends over AMQP, with rhea as a raw client and plain TLS bytes; after each,
// an SDK device still registers over AMQP.

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

const stillServes = async (id: string) =>
  expect(await register(emulator, id, groupDeviceKey('hashed', id), { transport: 'amqp' })).toMatchObject({
    status: 'assigned',
  });

const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
const lastLog = (event: string) => logs.findLast((l) => l.event === event);

describe('AMQP: the port', () => {
  it('reports where it listens, with a port in provisioningHost', () => {
    const endpoint = emulator.endpoints.amqp;
    expect(endpoint?.provisioningHost).toBe(`localhost:${endpoint?.port}`);
  });

  it('answers HTTP on the AMQP port with a 400 that says what the port serves, and logs it', async () => {
    const answer = (
      await rawAmqpExchange(emulator, Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
    ).toString();
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('This port serves the DPS device API over AMQP 1.0 (SASL PLAIN), not HTTP');
    expect(lastLog('amqp.protocol')).toMatchObject({ level: 'warn', kind: 'not-amqp', protocol: 'http' });
    await stillServes('amqp-after-http');
  });

  it('answers an MQTT CONNECT with CONNACK "unacceptable protocol version"', async () => {
    const connect = Buffer.from([
      0x10,
      0x10,
      0x00,
      0x04,
      ...Buffer.from('MQTT'),
      0x04,
      0x02,
      0x00,
      0x3c,
      0x00,
      0x04,
      ...Buffer.from('dev1'),
    ]);
    expect([...(await rawAmqpExchange(emulator, connect))]).toEqual([0x20, 0x02, 0x00, 0x01]);
    expect(lastLog('amqp.protocol')).toMatchObject({ kind: 'not-amqp', protocol: 'mqtt' });
  });

  // AMQP without SASL and without a client certificate is an IoT Hub client's (azure-iot-device-amqp
  // authenticates by CBS put-token): hub/hub.amqp.test.ts.
  it('answers another protocol id or version with the SASL protocol header (version negotiation)', async () => {
    const tlsAmqp = Buffer.from([0x41, 0x4d, 0x51, 0x50, 2, 1, 0, 0]);
    expect(await rawAmqpExchange(emulator, tlsAmqp)).toEqual(SASL_HEADER);
    expect(lastLog('amqp.protocol')).toMatchObject({ kind: 'unsupported-header' });
    expect(await rawAmqpExchange(emulator, Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]))).toEqual(SASL_HEADER);
  });

  it('closes a connection whose frame announces more than the max frame size', async () => {
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(0x7fffffff, 0);
    huge[4] = 2;
    huge[5] = 1;
    // The server's SASL header and mechanisms frame, then nothing: the connection is closed.
    const answer = await rawAmqpExchange(emulator, Buffer.concat([SASL_HEADER, huge]));
    expect(answer.subarray(0, 8)).toEqual(SASL_HEADER);
    expect(lastLog('amqp.protocol')).toMatchObject({ kind: 'frame-too-large', size: 0x7fffffff });
    await stillServes('amqp-after-huge-frame');
  });

  it('logs a client that does not speak TLS on the AMQP port', async () => {
    await plainTcpToAmqpPort(emulator, SASL_HEADER);
    await expect.poll(() => lastLog('amqp.protocol')?.msg).toMatch(/did not speak TLS/);
  });
});

describe('AMQP: a connected client', () => {
  const key = (id: string) => groupDeviceKey('hashed', id);

  it('closes with amqp:connection:framing-error after a malformed frame, and keeps serving', async () => {
    const device = await connectRheaDevice(emulator, 'amqp-raw-framing', key('amqp-raw-framing'));
    const tiny = Buffer.from([0, 0, 0, 3, 2, 0, 0, 0]);
    (device.connection as unknown as { socket: { write(b: Buffer): void } }).socket.write(tiny);
    expect(await device.closed).toMatchObject({
      condition: 'amqp:connection:framing-error',
      description: expect.stringContaining('frame size 3 is below the minimum of 8'),
    });
    expect(lastLog('amqp.protocol')).toMatchObject({ kind: 'malformed-frame' });
    await stillServes('amqp-after-framing');
  });

  it('closes with amqp:decode-error after a well-framed frame that does not decode', async () => {
    const device = await connectRheaDevice(emulator, 'amqp-raw-decode', key('amqp-raw-decode'));
    // A 12-byte AMQP frame on channel 0 whose body is not a described performative.
    const garbage = Buffer.from([0, 0, 0, 12, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    (device.connection as unknown as { socket: { write(b: Buffer): void } }).socket.write(garbage);
    expect(await device.closed).toMatchObject({ condition: 'amqp:decode-error' });
    await stillServes('amqp-after-decode');
  });

  it('answers a wrong key in its open (com.microsoft:open-error) and closes with amqp:unauthorized-access', async () => {
    const device = await connectRheaDevice(emulator, 'amqp-raw-wrong', generateSymmetricKey(32));
    const openError = (device.connection.properties as Record<string, unknown> | undefined)?.[
      'com.microsoft:open-error'
    ];
    expect(openError).toMatchObject({ condition: 'amqp:unauthorized-access' });
    const error = await device.closed;
    expect(error?.condition).toBe('amqp:unauthorized-access');
    expect(JSON.parse(error?.description ?? '{}')).toMatchObject({ errorCode: 401002 });
  });

  it('refuses a link to another registration', async () => {
    const device = await connectRheaDevice(emulator, 'amqp-raw-links', key('amqp-raw-links'));
    const receiver = device.connection.open_receiver({
      source: { address: `${emulator.idScope}/registrations/someone-else` },
    });
    const error = await new Promise<{ condition?: string; description?: string } | undefined>((resolve) =>
      receiver.on('receiver_close', (context: EventContext) => resolve(context.receiver?.error as never)),
    );
    expect(error?.condition).toBe('amqp:unauthorized-access');
    expect(lastLog('amqp.link')?.msg).toContain('someone-else');
    device.connection.close();
  });

  it('rejects a request of an unknown operation type with the DPS error body', async () => {
    const id = 'amqp-raw-unknown-op';
    const device = await connectRheaDevice(emulator, id, key(id));
    const address = `${emulator.idScope}/registrations/${id}`;
    device.connection.open_receiver({ source: { address } });
    const sender = device.connection.open_sender({ target: { address } });
    const outcome = await new Promise<{ condition?: string; description?: string }>((resolve) => {
      sender.on('rejected', (context: EventContext) => resolve(context.delivery?.remote_state?.error as never));
      sender.once('sendable', () =>
        sender.send({
          correlation_id: 'c1',
          application_properties: { 'iotdps-operation-type': 'iotdps-frobnicate' },
          body: '',
        }),
      );
    });
    expect(outcome.condition).toBe('com.microsoft:argument-error');
    expect(JSON.parse(outcome.description ?? '{}')).toMatchObject({
      errorCode: 400001,
      message: expect.stringContaining('"iotdps-frobnicate" is not one of iotdps-register'),
    });
    device.connection.close();
  });

  it('closes the link of a message larger than the limit, and keeps serving', async () => {
    const id = 'amqp-raw-huge-message';
    const device = await connectRheaDevice(emulator, id, key(id));
    const address = `${emulator.idScope}/registrations/${id}`;
    device.connection.open_receiver({ source: { address } });
    const sender = device.connection.open_sender({ target: { address } });
    const error = await new Promise<{ condition?: string } | undefined>((resolve) => {
      sender.on('sender_close', (context: EventContext) => resolve(context.sender?.error as never));
      sender.once('sendable', () =>
        sender.send({
          correlation_id: 'c2',
          application_properties: { 'iotdps-operation-type': 'iotdps-register' },
          body: rhea.message.data_section(Buffer.alloc(MAX_AMQP_MESSAGE_BYTES + 70_000, 0x20)),
        }),
      );
    });
    expect(error?.condition).toBe('amqp:link:message-size-exceeded');
    expect(lastLog('amqp.message')).toMatchObject({ level: 'warn' });
    device.connection.close();
    await stillServes('amqp-after-huge-message');
  });
});

describe('AMQP: a client with a TLS certificate and no SASL (how the SDKs speak X.509)', () => {
  it('opens; the first link (a registration) is attested and its requests refused 401002; a link to another address is refused', async () => {
    const stranger = await createTestCa('Raw AMQP stranger');
    const device = await createTestDeviceCertificate('amqp-raw-x509', { issuer: stranger });
    const endpoint = emulator.endpoints.amqp;
    if (!endpoint) throw new Error('no AMQP');
    // No username and no SASL mechanisms: rhea sends the bare AMQP header, as azure-iot-amqp-base does.
    const connection = await openRheaConnection(endpoint.port, emulator.caCertPem, {
      cert: pemChain(device, stranger),
      key: device.key,
    });

    // The first link's address makes the connection DPS's (one naming no registration would make
    // it a hub's: hub/hub.amqp.test.ts).
    const address = `${emulator.idScope}/registrations/amqp-raw-x509`;
    connection.open_receiver({ source: { address } });
    const sender = connection.open_sender({ target: { address } });
    const outcome = await new Promise<{ condition?: string; description?: string }>((resolve) => {
      sender.on('rejected', (context: EventContext) => resolve(context.delivery?.remote_state?.error as never));
      sender.once('sendable', () =>
        sender.send({
          correlation_id: 'x1',
          application_properties: { 'iotdps-operation-type': 'iotdps-register' },
          body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: 'amqp-raw-x509' }))),
        }),
      );
    });
    expect(outcome.condition).toBe('amqp:unauthorized-access');
    expect(JSON.parse(outcome.description ?? '{}')).toMatchObject({ errorCode: 401002 });
    expect(logs.findLast((l) => l.event === 'amqp.auth')).toMatchObject({
      registrationId: 'amqp-raw-x509',
      reason: 'no-matching-enrollment',
    });
    const malformed = connection.open_receiver({ source: { address: 'not-a-registration' } });
    const refused = await new Promise<{ condition?: string } | undefined>((resolve) =>
      malformed.on('receiver_close', (context: EventContext) => resolve(context.receiver?.error as never)),
    );
    expect(refused?.condition).toBe('amqp:unauthorized-access');
    connection.close();
    await stillServes('amqp-after-raw-x509');
  });

  it('closes a connection that opened without SASL and then sends a SASL frame', async () => {
    const device = await createTestDeviceCertificate('amqp-raw-x509-sasl');
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = tls.connect(
        {
          host: 'localhost',
          port: emulator.endpoints.amqp?.port,
          ca: emulator.caCertPem,
          cert: device.cert,
          key: device.key,
        },
        () => {
          // The bare AMQP header, then an 8-byte frame of type 1 (SASL).
          socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0, 0, 0, 0, 8, 2, 1, 0, 0]));
        },
      );
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    // The server answered with its own AMQP header (no SASL), then closed.
    expect(answer.subarray(0, 8)).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]));
    expect(lastLog('amqp.protocol')).toMatchObject({
      kind: 'malformed-frame',
      reason: 'a SASL frame on a connection that opened without SASL',
    });
    await stillServes('amqp-after-raw-x509-sasl');
  });
});

describe('AMQP over WebSockets', () => {
  it('is served with the AMQPWSB10 subprotocol, beside mqtt', async () => {
    expect(emulator.endpoints.webSockets?.subprotocols).toEqual(['mqtt', 'AMQPWSB10']);
    const attempt = await openWebSocket(emulator, ['AMQPWSB10']);
    expect(attempt).toMatchObject({ kind: 'open', protocol: 'AMQPWSB10' });
    if (attempt.kind !== 'open') return;
    // Not AMQP inside: the server says which header it takes, and closes.
    const reply = new Promise<Buffer>((resolve) => attempt.ws.once('message', (data: Buffer) => resolve(data)));
    const closed = closeOf(attempt.ws);
    attempt.ws.send(Buffer.from([0x41, 0x4d, 0x51, 0x50, 2, 1, 0, 0]));
    expect(await reply).toEqual(SASL_HEADER);
    await closed;
  });
});
