// A custom allocation payload carries JSON the emulator does not read: the device's `payload` goes
// to the webhook, the webhook's answer `payload` back to the device. Both are parsed and written
// again with JSON.parse/JSON.stringify, so an integer past ±2^53 (a 64-bit id, say) reaches the
// other side rounded to the nearest double; DPS (a .NET service) most likely passes it as written,
// but does not say. The choice is documented (docs/device-api.md, "Choices where DPS is unknown");
// this test holds the emulator to what the table says.
import { createRegistrationSasToken } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, ID_SCOPE } from './testing/fixtures.js';
import { rawRequest } from './testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from './testing/test-bed.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

describe('integers past 2^53 in a custom allocation payload', () => {
  it('reach the webhook and the device rounded to a double (9007199254740993 as 9007199254740992)', async () => {
    const id = 'big-int-payload-1';
    const headers = {
      Authorization: createRegistrationSasToken({
        idScope: ID_SCOPE,
        registrationId: id,
        key: groupDeviceKey('custom', id),
      }),
    };
    const base = `/${ID_SCOPE}/registrations/${id}`;
    const accepted = await rawRequest(bed.emulator, {
      method: 'PUT',
      path: `${base}/register?api-version=2019-03-31`,
      headers,
      // As text: JSON.stringify could not write the literal.
      body: `{"registrationId":"${id}","payload":{"n":9007199254740993,"small":4503599627370495}}`,
    });
    expect(accepted.status, accepted.text).toBe(202);
    const { operationId } = accepted.json as { operationId: string };
    let done = accepted;
    while (done.status === 202) {
      // As a device polls (the emulator says retry-after 0; a little less often than that).
      await new Promise((resolve) => setTimeout(resolve, 20));
      done = await rawRequest(bed.emulator, {
        method: 'GET',
        path: `${base}/operations/${operationId}?api-version=2019-03-31`,
        headers,
      });
    }
    expect(done.status, done.text).toBe(200);
    // The webhook got the device's payload rounded (it echoes it back as `received`).
    const [call] = bed.webhook.callsFor(id);
    expect(call?.rawBody).toContain('"payload":{"n":9007199254740992,"small":4503599627370495}');
    expect(done.text).toContain('"received":{"n":9007199254740992,"small":4503599627370495}');
    expect(done.text).not.toContain('9007199254740993');
  });
});
