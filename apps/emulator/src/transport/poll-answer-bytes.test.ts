import { join } from 'node:path';
import { createRegistrationSasToken } from '@dpskit/contracts';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey, ID_SCOPE } from '../testing/fixtures.js';
import { rawRequest } from '../testing/raw-https.js';
import { connectRawDevice, subscribeResponses } from '../testing/raw-mqtt.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import { asciiJson } from './mqtt-topics.js';

// A finished operation's poll is answered with the response text the store keeps
// (OperationRecord.responseJson), not with a serialization of it parsed again: these check that
// the bytes a device gets are those the re-serialization wrote (MQTT: non-ASCII escaped; HTTPS:
// UTF-8), and that they are the bytes in the state file.

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ emulator, close } = await startTestBedWithWebhook());
});
afterAll(() => close?.());

const token = (id: string) =>
  createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: id, key: groupDeviceKey('custom', id) });

/** The operation's response as the state file holds it, read on a connection of its own. */
function storedResponse(operationId: string): string {
  const db = new Database(join(emulator.stateDir, 'emulator.db'), { readonly: true });
  try {
    const row = db.prepare('SELECT response_json FROM operations WHERE operation_id = ?').get(operationId) as
      | { response_json: string | null }
      | undefined;
    if (!row?.response_json) throw new Error(`operation ${operationId} has no stored response`);
    return row.response_json;
  } finally {
    db.close();
  }
}

describe('a finished operation polled over MQTT and HTTPS', () => {
  it('answers with the bytes of its stored response, non-ASCII escaped over MQTT and UTF-8 over HTTPS', async () => {
    // The custom group's webhook echoes the device's payload into the registration state.
    const id = 'custom-poll-bytes';
    const device = await connectRawDevice(emulator, {
      clientId: id,
      username: `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31&ClientVersion=raw`,
      password: token(id),
    });
    try {
      await subscribeResponses(device);
      const payloads = new Map<string, Buffer>();
      device.client.on('message', (topic, payload) => {
        const rid = /\$rid=([^&]+)/.exec(topic)?.[1];
        if (rid) payloads.set(rid, payload);
      });
      const payload = { name: 'f\u00fcnf \u20ac', quote: '"\\', emoji: '\u{1f600}' };
      const accepted = await device.request(
        '$dps/registrations/PUT/iotdps-register/?$rid=1',
        JSON.stringify({ registrationId: id, payload }),
        '1',
      );
      expect(accepted.status).toBe(202);
      const { operationId } = accepted.body as { operationId: string };
      // retry-after 0: the poll is held until the allocation (a webhook call) has ended.
      const polled = await device.request(
        `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=${operationId}`,
        '',
        '2',
      );
      expect(polled.status).toBe(200);
      expect(polled.body).toMatchObject({ status: 'assigned', registrationState: { payload: { received: payload } } });

      const stored = storedResponse(operationId);
      const mqttBytes = payloads.get('2')?.toString('latin1');
      // What the transport wrote before it had the stored text: JSON.stringify of the parsed row.
      expect(mqttBytes).toBe(asciiJson(JSON.parse(stored)));
      expect(mqttBytes).toMatch(/^[\x20-\x7e]+$/);
      expect(mqttBytes).toContain('f\\u00fcnf \\u20ac');

      // A second poll (answered from the store again) and HTTPS give the same answer.
      const again = await device.request(
        `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=${operationId}`,
        '',
        '3',
      );
      expect(again.status).toBe(200);
      expect(payloads.get('3')?.toString('latin1')).toBe(mqttBytes);
      const overHttps = await rawRequest(emulator, {
        method: 'GET',
        path: `/${ID_SCOPE}/registrations/${id}/operations/${operationId}?api-version=2019-03-31`,
        headers: { Authorization: token(id) },
      });
      expect(overHttps.status).toBe(200);
      expect(overHttps.text).toBe(stored);
      expect(overHttps.text).toBe(JSON.stringify(JSON.parse(stored)));
      expect(overHttps.text).toContain('f\u00fcnf \u20ac');
    } finally {
      await device.end();
    }
  });
});
