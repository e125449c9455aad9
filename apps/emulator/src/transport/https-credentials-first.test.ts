import { createSasToken, generateSymmetricKey, registrationResource } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_HUB_BODY_BYTES } from '../hub/https-api.js';
import { groupDeviceKey, HUB_A, ID_SCOPE } from '../testing/fixtures.js';
import { deviceClient, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { rawRequest } from '../testing/raw-https.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// Credentials before work: a request to the local hub or the DPS device API that its headers alone
// refuse (no token, a wrong one, an unknown device) is answered from them, its body never read.
// Before, the listener read the whole body first (256 KiB a hub request, ~97 KB a device request):
// a client without credentials that announced a body and sent none held the connection until the
// idle timeout (60 s), and was answered 408, not 401.

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logs.push(record) });
});
afterAll(() => bed?.close());

/** Headers announcing a body (`Content-Length`) that is never sent. */
const headersOnly = (options: { method: string; path: string; headers: Record<string, string> }) =>
  rawRequest(bed.emulator, { ...options, withholdBody: true });

const hourFromNow = () => Math.floor(Date.now() / 1000) + 3600;

describe('the local hub over HTTPS refuses before reading the body', () => {
  it('a registry request without a token: 401 IotHubUnauthorizedAccess, connection closed', async () => {
    const answer = await headersOnly({
      method: 'PATCH',
      path: '/twins/no-token-device?api-version=2021-04-12',
      headers: { Host: HUB_A, 'Content-Length': String(MAX_HUB_BODY_BYTES) },
    });
    expect(answer).toMatchObject({
      status: 401,
      headers: { connection: 'close', 'iothub-errorcode': 'IotHubUnauthorizedAccess' },
    });
    expect(answer.json).toMatchObject({ Message: 'ErrorCode:IotHubUnauthorizedAccess;Unauthorized' });
    expect(logs.findLast((l) => l.event === 'hub.auth')).toMatchObject({ hub: HUB_A, reason: 'missing-token' });
  });

  it('telemetry with a wrong device token: 401, the refusal reported once, connection closed', async () => {
    const id = 'first-hub-http-1';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key, { transport: 'https' });
    const refusals: string[] = [];
    const listener = (event: { kind: string; deviceId?: string; reason?: string }) => {
      if (event.kind === 'connect-refused' && event.deviceId === id) refusals.push(String(event.reason));
    };
    bed.emulator.on('hub', listener);
    try {
      const token = createSasToken({
        resource: `${HUB_A}/devices/${id}`,
        key: generateSymmetricKey(),
        expiresAt: hourFromNow(),
      }).replace(/&skn=[^&]*/, '');
      const answer = await headersOnly({
        method: 'POST',
        path: `/devices/${id}/messages/events?api-version=2020-09-30`,
        headers: { Host: HUB_A, Authorization: token, 'Content-Length': String(MAX_HUB_BODY_BYTES) },
      });
      expect(answer).toMatchObject({
        status: 401,
        headers: { connection: 'close', 'iothub-errorcode': 'IotHubUnauthorizedAccess' },
      });
      expect(refusals).toEqual(['signature-mismatch']);
      expect(bed.emulator.telemetry(HUB_A, id)).toEqual([]);
      expect(JSON.stringify(logs)).not.toContain(token.split('sig=')[1]?.split('&')[0]);
    } finally {
      bed.emulator.off('hub', listener);
    }
  });

  it('the SDKs still see their UnauthorizedError when they send the whole body, and the hub serves on', async () => {
    const id = 'first-hub-http-2';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key, { transport: 'https' });
    // A device message of 200 KiB with another device's key: the body is on its way when the 401 is.
    const refused = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.deviceId === id);
    const impostor = await deviceClient(bed.emulator, {
      hub: HUB_A,
      deviceId: id,
      key: groupDeviceKey('custom', 'someone-else'),
      transport: 'https',
    });
    await impostor.open();
    const err = await rejectionOf(impostor.sendEvent(new Message(Buffer.alloc(200 * 1024, 0x61))));
    await impostor.close();
    expect(err.name).toBe('UnauthorizedError');
    expect(await refused).toMatchObject({ reason: 'signature-mismatch' });

    // The registry with a wrong key and a large twin patch.
    const wrongKey = registryClient(
      bed.emulator,
      HUB_A,
      `HostName=${HUB_A};SharedAccessKeyName=iothubowner;SharedAccessKey=${generateSymmetricKey()}`,
    );
    const big = { properties: { desired: { blob: 'x'.repeat(4000), more: 'y'.repeat(4000) } } };
    await expect(wrongKey.updateTwin(id, big, '*')).rejects.toMatchObject({ name: 'UnauthorizedError' });

    // The device itself, and the registry with the right key, are served.
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'https' });
    await device.open();
    await device.sendEvent(new Message(Buffer.alloc(200 * 1024, 0x62)));
    await device.close();
    expect(bed.emulator.telemetry(HUB_A, id).map((m) => m.body.length)).toEqual([200 * 1024]);
    const registry = registryClient(bed.emulator, HUB_A);
    expect((await registry.updateTwin(id, big, '*')).responseBody.properties.desired.blob).toBe('x'.repeat(4000));
  });
});

describe('the DPS device API over HTTPS refuses before reading the body', () => {
  it('a register without a token: 401 401002 Unauthorized, reported, connection closed', async () => {
    const id = 'first-dps-http-1';
    const answer = await headersOnly({
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2019-03-31`,
      headers: { 'Content-Length': String(96 * 1024) },
    });
    expect(answer).toMatchObject({ status: 401, headers: { connection: 'close', 'x-ms-error-code': '401002' } });
    expect(answer.json).toMatchObject({ errorCode: 401002, message: 'Unauthorized' });
    expect(bed.events.filter((e) => e.registrationId === id)).toMatchObject([
      { transport: 'https', outcome: { status: 'unauthorized', errorCode: 401002 } },
    ]);
  });

  it('an operation-status poll and a status lookup with a wrong key: 401, connection closed', async () => {
    const id = 'first-dps-http-2';
    const token = createSasToken({
      resource: registrationResource(ID_SCOPE, id),
      key: generateSymmetricKey(),
      expiresAt: hourFromNow(),
    });
    for (const [method, path] of [
      ['GET', `/${ID_SCOPE}/registrations/${id}/operations/4.0000000000000000.00000000-0000-0000-0000-000000000000`],
      ['POST', `/${ID_SCOPE}/registrations/${id}`],
    ] as const) {
      const answer = await headersOnly({
        method,
        path: `${path}?api-version=2019-03-31`,
        headers: { Authorization: token, 'Content-Length': String(96 * 1024) },
      });
      expect(answer).toMatchObject({ status: 401, headers: { connection: 'close' } });
      expect(answer.json).toMatchObject({ errorCode: 401002, message: 'Unauthorized' });
    }
    expect(JSON.stringify(logs)).not.toContain(token.split('sig=')[1]?.split('&')[0]);
  });

  it('answers what the headers do not decide as before, once the body is read', async () => {
    // No api-version: the 400 comes after the body (the credentials are not what refuses it).
    const noVersion = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/first-dps-http-3/register`,
      body: '{}',
    });
    expect(noVersion).toMatchObject({ status: 400, json: { errorCode: 400001 } });
    // A device with the right key registers over HTTPS as ever.
    const ok = await register(bed.emulator, 'first-dps-http-4', groupDeviceKey('hashed', 'first-dps-http-4'), {
      transport: 'https',
    });
    expect(ok.status).toBe('assigned');
  });
});
