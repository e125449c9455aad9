import net from 'node:net';
import type { LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import { rawTlsExchange } from '../testing/raw-amqp.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';

// Another protocol on the MQTT port: logged and refused with what the client can read, and the port
// keeps serving. (The HTTPS and AMQP ports: https.test.ts, service-api.test.ts and amqp.test.ts.)

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;
const logs: LogRecord[] = [];
// Each test in a second of its own on the log's clock: its refusal's warning is logged in full
// (mqtt.protocol is limited to one line in full a second; the flood: mqtt-flood.test.ts).
const clock = logClock();

beforeAll(async () => {
  ({ emulator, close } = await startTestBedWithWebhook({ log: (record) => logs.push(record), logClock: clock.now }));
});

beforeEach(() => clock.nextSecond());

afterAll(() => close?.());

const lastLog = (event: string) => logs.findLast((l) => l.event === event);
const stillServes = async (id: string) =>
  expect(await register(emulator, id, groupDeviceKey('hashed', id))).toMatchObject({ status: 'assigned' });

describe('the MQTT port', () => {
  it('answers HTTP with a 400 that says what the port serves, and logs it', async () => {
    const answer = (
      await rawTlsExchange(
        emulator,
        emulator.endpoints.mqtt.port,
        Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      )
    ).toString();
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('This port serves the DPS device API over MQTT 3.1.1, not HTTP');
    expect(lastLog('mqtt.protocol')).toMatchObject({ level: 'warn', protocol: 'http' });
    await stillServes('mqtt-after-http');
  });

  it('closes an AMQP client, logging that it spoke AMQP', async () => {
    await rawTlsExchange(emulator, emulator.endpoints.mqtt.port, Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]));
    expect(lastLog('mqtt.protocol')).toMatchObject({ protocol: 'amqp', firstBytes: 'AMQP\\x03\\x01\\x00\\x00' });
    await stillServes('mqtt-after-amqp');
  });

  it('logs a client that does not speak TLS', async () => {
    await new Promise<void>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: emulator.endpoints.mqtt.port }, () =>
        socket.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, ...Buffer.from('MQTT'), 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00])),
      );
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    await expect.poll(() => lastLog('mqtt.protocol')?.msg).toMatch(/did not speak TLS/);
  });
});
