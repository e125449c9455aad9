// Every refused device credential, on every transport, has its debug line: the transport's `*.auth`
// event naming the client and the reason, never a token. A device that sends none is refused for
// `missing-token` whatever it speaks to (DPS and the hubs' registry said so; a hub device was
// `malformed`), and a hub's MQTT CONNECT refused before its token is read (a module identity, a
// client id that is not the device id) had no `hub.auth` line, only aedes' bare `hub.mqtt` one.
import { createDeviceSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, ID_SCOPE } from './testing/fixtures.js';
import { createDeviceKey, registryClient } from './testing/hub-sdk.js';
import { rawMqttConnection } from './testing/mqtt-bytes.js';
import { rawSaslInit } from './testing/raw-amqp.js';
import { rawRequest } from './testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from './testing/test-bed.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
let token: string;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), 'debug-line-device');
  token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: 'debug-line-device', key });
});
afterAll(async () => {
  await bed?.close();
});

/** The first packet the MQTT listener answers this CONNECT with (the CONNACK). */
async function connack(connect: Omit<mqttPacket.IConnectPacket, 'cmd' | 'protocolVersion'>) {
  const connection = rawMqttConnection(bed.emulator);
  await connection.write(mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, ...connect }));
  await connection.packets(1);
  const [answer] = connection.received;
  return answer?.cmd === 'connack' ? answer.returnCode : answer?.cmd;
}

/** The debug lines of `event` naming `who` (in `field`). */
function debugLines(event: string, field: string, who: string) {
  return logged.filter((l) => l.level === 'debug' && l.event === event && l[field] === who);
}

describe('a refused credential has its debug line', () => {
  it('DPS over HTTPS, no Authorization: https.auth, missing-token', async () => {
    const response = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/no-auth-https/register?api-version=2021-10-01`,
      body: '{"registrationId":"no-auth-https"}',
    });
    expect(response.status).toBe(401);
    expect(debugLines('https.auth', 'registrationId', 'no-auth-https')).toEqual([
      expect.objectContaining({ reason: 'missing-token' }),
    ]);
  });

  it('DPS over MQTT, no password: mqtt.auth, missing-token', async () => {
    const clientId = 'no-auth-mqtt';
    const username = `${ID_SCOPE}/registrations/${clientId}/api-version=2019-03-31`;
    // DPS answers the CONNECT, and 401 the first request (the capture's order).
    expect(await connack({ clientId, username, clean: true, keepalive: 0 })).toBe(0);
    expect(debugLines('mqtt.auth', 'registrationId', clientId)).toEqual([
      expect.objectContaining({ reason: 'missing-token' }),
    ]);
  });

  it('DPS over AMQP, a SASL mechanism it does not serve: amqp.auth, missing-token', async () => {
    const before = logged.filter((l) => l.level === 'debug' && l.event === 'amqp.auth').length;
    // rhea answers the init with the SASL outcome auth (1); nothing of it was logged.
    expect(await rawSaslInit(bed.emulator, 'CRAM-MD5')).toBe(1);
    const lines = logged.filter((l) => l.level === 'debug' && l.event === 'amqp.auth').slice(before);
    expect(lines).toEqual([expect.objectContaining({ reason: 'missing-token', transport: 'amqp' })]);
    expect(lines[0]?.msg).toContain('SASL CRAM-MD5');
  });

  it("SASL ANONYMOUS is the hubs' (Event Hubs clients authenticate by CBS): accepted, no amqp.auth line", async () => {
    const before = logged.filter((l) => l.level === 'debug' && l.event === 'amqp.auth').length;
    expect(await rawSaslInit(bed.emulator, 'ANONYMOUS')).toBe(0);
    expect(logged.filter((l) => l.level === 'debug' && l.event === 'amqp.auth').slice(before)).toEqual([]);
  });

  it('a hub device over HTTPS, no Authorization: hub.auth, missing-token', async () => {
    const deviceId = 'debug-line-device';
    const before = debugLines('hub.auth', 'deviceId', deviceId).length;
    const response = await rawRequest(bed.emulator, {
      method: 'POST',
      path: `/devices/${deviceId}/messages/events?api-version=2021-04-12`,
      headers: { Host: HUB_A },
      body: '{}',
    });
    expect(response.status).toBe(401);
    expect(debugLines('hub.auth', 'deviceId', deviceId).slice(before)).toEqual([
      expect.objectContaining({ hub: HUB_A, reason: 'missing-token' }),
    ]);
  });

  it('a hub device over MQTT: no password, a module that does not exist, a client id that is not the device id', async () => {
    const deviceId = 'debug-line-device';
    const attempts = [
      {
        clientId: deviceId,
        username: `${HUB_A}/${deviceId}/?api-version=2021-04-12`,
        code: 5,
        reason: 'missing-token',
      },
      {
        clientId: `${deviceId}/module-1`,
        username: `${HUB_A}/${deviceId}/module-1/?api-version=2021-04-12`,
        password: Buffer.from(token),
        code: 5,
        reason: 'module-not-found',
      },
      {
        clientId: 'someone-else',
        username: `${HUB_A}/${deviceId}/?api-version=2021-04-12`,
        password: Buffer.from(token),
        code: 2,
        reason: 'client-id-mismatch',
      },
    ];
    const reasons: string[] = [];
    const listener = (event: { kind: string; deviceId?: string; reason?: string }) => {
      if (event.kind === 'connect-refused' && event.deviceId === deviceId) reasons.push(event.reason ?? '');
    };
    bed.emulator.on('hub', listener);
    try {
      for (const { code, reason, ...connect } of attempts) {
        const before = debugLines('hub.auth', 'deviceId', deviceId).length;
        expect(await connack({ ...connect, clean: true, keepalive: 0 })).toBe(code);
        expect(debugLines('hub.auth', 'deviceId', deviceId).slice(before)).toEqual([
          expect.objectContaining({ level: 'debug', hub: HUB_A, reason }),
        ]);
      }
    } finally {
      bed.emulator.off('hub', listener);
    }
    // The `hub` event says the same reasons.
    expect(reasons).toEqual(attempts.map((a) => a.reason));
  });

  it('never writes a token or a signature', () => {
    const text = JSON.stringify(logged);
    const signature = decodeURIComponent(/sig=([^&]+)/.exec(token)?.[1] ?? '');
    expect(signature).not.toBe('');
    expect(text).not.toContain(signature);
    expect(text).not.toContain('SharedAccessSignature');
    expect(text).not.toContain('sig=');
  });
});
