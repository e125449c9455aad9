// A hub device token built with @dpskit/contracts, as a user of the packages builds one for a
// client of their own (no SDK): `createDeviceSasToken` gives what azure-iot-device's
// SharedAccessSignature.create gives, and the emulated hub takes it over MQTT and HTTPS from raw
// clients. `createSasToken` for `{hub}/devices/{id}` used to add `skn=registration` (its default
// for DPS registration tokens): a token naming a policy, which the hub refuses for a device.
import { createDeviceSasToken, createSasToken, deviceResource, parseSasToken } from '@dpskit/contracts';
import deviceSdk from 'azure-iot-device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, registryClient } from '../testing/hub-sdk.js';
import { hubConnackFor } from '../testing/mqtt-bytes.js';
import { rawRequest } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const { SharedAccessSignature } = deviceSdk;

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** The CONNACK return code the hub's MQTT listener answers a CONNECT with this token with. */
function connackFor(deviceId: string, token: string): Promise<number | undefined> {
  return hubConnackFor(bed.emulator, { hub: HUB_A, deviceId, token });
}

/** The status of a telemetry POST over HTTPS with this token. */
async function telemetryStatus(deviceId: string, token: string): Promise<number> {
  const response = await rawRequest(bed.emulator, {
    method: 'POST',
    path: `/devices/${encodeURIComponent(deviceId)}/messages/events?api-version=2021-04-12`,
    headers: { Host: HUB_A, Authorization: token },
    body: '{"t":21}',
  });
  return response.status;
}

describe('a hub device token from @dpskit/contracts', () => {
  // `*` and `(` are allowed in a device id and escaped in `sr` (azure-iot-common writes `*` as %2a).
  for (const deviceId of ['contracts-token-1', 'contracts-token(2)*']) {
    it(`equals azure-iot-device's SharedAccessSignature.create and connects over MQTT and HTTPS (${deviceId})`, async () => {
      const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);
      const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId, key });
      const sdkToken = SharedAccessSignature.create(HUB_A, deviceId, key, String(parseSasToken(token).expiresAt));
      expect(token).toBe(sdkToken.toString());
      expect(token).not.toContain('skn=');
      expect(await connackFor(deviceId, token)).toBe(0);
      expect(await telemetryStatus(deviceId, token)).toBe(204);
      // sr raw (as createSasToken signs by default): the hub takes it too.
      const raw = createDeviceSasToken({ hubHostName: HUB_A, deviceId, key, encodeResource: false });
      expect(await connackFor(deviceId, raw)).toBe(0);
    });
  }

  it('createSasToken for {hub}/devices/{id} names no policy, so the hub takes it', async () => {
    const deviceId = 'contracts-token-3';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const token = createSasToken({ resource: deviceResource(HUB_A, deviceId), key, expiresAt });
    expect(await connackFor(deviceId, token)).toBe(0);
    expect(await telemetryStatus(deviceId, token)).toBe(204);
  });

  it('a device token that names a key (skn) is a policy token: refused, as IoT Hub refuses it', async () => {
    const deviceId = 'contracts-token-4';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const token = createSasToken({
      resource: deviceResource(HUB_A, deviceId),
      key,
      expiresAt,
      keyName: 'registration',
    });
    expect(await connackFor(deviceId, token)).toBe(5);
    expect(await telemetryStatus(deviceId, token)).toBe(401);
  });
});
