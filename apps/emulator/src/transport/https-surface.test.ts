import { createSasToken } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A, ID_SCOPE } from '../testing/fixtures.js';
import { hubDeviceToken, rawRequest, registryToken, serviceToken } from '../testing/raw-https.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// Which API a request on the HTTPS listener is for (the hub's routes, the DPS service API, the DPS
// device API) decides its body limit and the shape of the answers given without a route (413, 408,
// 500). It is the API its parsed URL routes it to, the same one that answers it.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(() => bed?.close());

const hourFromNow = () => Math.floor(Date.now() / 1000) + 3600;
async function hubDevice(id: string): Promise<string> {
  const key = groupDeviceKey('custom', id);
  await register(bed.emulator, id, key, { transport: 'https' });
  return hubDeviceToken(HUB_A, id, key);
}

describe('each API its own body limit and error shape', () => {
  it('a hub request over 256 KiB: IoT Hub 413 MessageTooLarge', async () => {
    const id = 'surface-hub-1';
    const answer = await rawRequest(bed.emulator, {
      method: 'POST',
      path: `/devices/${id}/messages/events?api-version=2021-04-12`,
      headers: { Host: HUB_A, Authorization: await hubDevice(id) },
      body: Buffer.alloc(300 * 1024, 0x61),
    });
    expect(answer).toMatchObject({ status: 413, headers: { 'iothub-errorcode': 'MessageTooLarge' } });
    expect(answer.json).toMatchObject({
      Message: 'ErrorCode:MessageTooLarge;Message size cannot exceed 262144 bytes.',
    });
  });

  it('a service API request over 1 MiB: DPS 400004 naming the limit', async () => {
    const answer = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: '/enrollments/surface-service-1?api-version=2021-10-01',
      headers: { Authorization: serviceToken(bed.emulator) },
      body: `{"blob":"${'x'.repeat(1024 * 1024)}"}`,
    });
    expect(answer).toMatchObject({ status: 400, headers: { 'x-ms-error-code': '400004' } });
    expect(answer.json).toMatchObject({ errorCode: 400004, message: 'The request body is larger than 1048576 bytes.' });
  });

  it('a DPS device request over its ~97 KB: DPS 400001 naming the limit', async () => {
    const id = 'surface-dps-1';
    const token = createSasToken({
      resource: `${ID_SCOPE}/registrations/${id}`,
      key: groupDeviceKey('custom', id),
      expiresAt: hourFromNow(),
    });
    const answer = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2021-06-01`,
      headers: { Authorization: token },
      body: `{"registrationId":"${id}","payload":"${'x'.repeat(120 * 1024)}"}`,
    });
    expect(answer).toMatchObject({ status: 400, headers: { 'x-ms-error-code': '400001' } });
    expect(answer.json).toMatchObject({ errorCode: 400001, message: 'The request body is larger than 99328 bytes.' });
  });
});

describe('a path with dot segments belongs to the API it is routed to', () => {
  it('/x/../devices/{id}/messages/events is hub telemetry, its body bounded at 256 KiB, not DPS’s ~97 KB', async () => {
    const id = 'surface-hub-2';
    const answer = await rawRequest(bed.emulator, {
      method: 'POST',
      path: `/x/../devices/${id}/messages/events?api-version=2021-04-12`,
      headers: { Host: HUB_A, Authorization: await hubDevice(id) },
      body: Buffer.alloc(150 * 1024, 0x62),
    });
    expect(answer.status, answer.text).toBe(204);
    expect(bed.emulator.telemetry(HUB_A, id).map((m) => m.body.length)).toEqual([150 * 1024]);
  });

  it('/twins/../enrollments/{id} is the service API, its body bounded at 1 MiB, not the hub’s 256 KiB', async () => {
    const id = 'surface-service-2';
    const answer = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: `/twins/../enrollments/${id}?api-version=2021-10-01`,
      headers: { Authorization: serviceToken(bed.emulator) },
      body: JSON.stringify({
        registrationId: id,
        attestation: { type: 'symmetricKey', symmetricKey: {} },
        optionalDeviceInformation: { tags: { padding: 'p'.repeat(300 * 1024) } },
      }),
    });
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    expect(answer.json).toMatchObject({
      registrationId: id,
      optionalDeviceInformation: { tags: { padding: 'p'.repeat(300 * 1024) } },
    });
  });

  it('/devices/../twins/{id} with a registry token is the hub’s twin read', async () => {
    const id = 'surface-hub-3';
    await hubDevice(id);
    const answer = await rawRequest(bed.emulator, {
      method: 'GET',
      path: `/devices/../twins/${id}?api-version=2021-04-12`,
      headers: { Host: HUB_A, Authorization: registryToken(HUB_A) },
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ deviceId: id });
  });
});
