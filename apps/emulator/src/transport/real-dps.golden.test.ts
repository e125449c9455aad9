import { createRegistrationSasToken, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import {
  closedPortUrl,
  groupDeviceKey,
  HUB_A,
  ID_SCOPE,
  startTestEmulator,
  tempStateDir,
  testEmulatorOptions,
} from '../testing/fixtures.js';
import { rawRequest } from '../testing/raw-https.js';
import { connectRawDevice, type RawMqttDevice, subscribeResponses } from '../testing/raw-mqtt.js';
import { type Capture, comparable, loadCapture } from '../testing/real-dps/normalize.js';
import { register } from '../testing/sdk.js';
import { startTestBed } from '../testing/test-bed.js';
import { startWebhook, type TestWebhook } from '../testing/webhook-server.js';

// Golden files: each real DPS capture in src/testing/real-dps/ against the emulator's answer in the
// same situation, over its real MQTT and HTTPS servers, equal in everything but ids, keys and times
// (whose form is still compared). The emulator runs with DPS's own retry-after of 3 s; the raw
// clients below poll without waiting, as the captures' clients did not have to.

let emulator: Emulator;
let webhook: TestWebhook;
let close: (() => Promise<void>) | undefined;
const open: RawMqttDevice[] = [];

beforeAll(async () => {
  webhook = await startWebhook((request) => {
    const id = request.deviceRuntimeContext.registrationId;
    // Answers only when the emulator gives up on it at shutdown: allocation stays `assigning`.
    if (id.startsWith('hold-')) return { delayMs: 600_000, body: { iotHubHostName: HUB_A } };
    if (id.startsWith('fail400-')) return { status: 400, body: { message: 'not this one' } };
    return { body: { iotHubHostName: HUB_A } };
  });
  const bed = await startTestBed(webhook.url, await closedPortUrl(), {
    retryAfterSeconds: 3,
    webhook: { timeoutMs: 600_000, retry: { count: 0, initialIntervalMs: 0, incrementMs: 0 } },
  });
  emulator = bed.emulator;
  close = async () => {
    await Promise.all(open.map((device) => device.end()));
    await bed.close();
    await webhook.close();
  };
});
afterAll(() => close?.());

const REGISTER = (rid: string) => `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`;
const POLL = (rid: string, operationId: string) =>
  `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`;

async function mqttDevice(id: string, key: string): Promise<RawMqttDevice> {
  const device = await connectRawDevice(emulator, {
    clientId: id,
    username: `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31&ClientVersion=golden`,
    password: createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: id, key }),
  });
  open.push(device);
  await subscribeResponses(device);
  return device;
}

/** Registers over raw MQTT (rid 1) and polls (rid 2, 3, …) until the operation leaves `assigning`. */
async function registerAndFinish(device: RawMqttDevice, id: string) {
  const accepted = await device.request(REGISTER('1'), JSON.stringify({ registrationId: id }), '1');
  const { operationId } = accepted.body as { operationId: string };
  for (let rid = 2; rid < 2_000; rid++) {
    const answer = await device.request(POLL(String(rid), operationId), ' ', String(rid));
    if (answer.status !== 202) return answer;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${id} stayed assigning`);
}

function expectSameAsCapture(capture: Capture, actual: unknown) {
  const { real, emulator: mine } = comparable(capture, actual);
  expect(mine).toBe(real);
}

describe('the emulator answers as real DPS did (golden files)', () => {
  it('register while allocation runs: 202 topic with retry-after=3, {operationId, status: assigning}', async () => {
    const capture = loadCapture('register-assigning');
    const device = await mqttDevice('hold-golden-1', groupDeviceKey('custom', 'hold-golden-1'));
    const answer = await device.request(REGISTER('1'), JSON.stringify({ registrationId: 'hold-golden-1' }), '1');
    expect(answer.topic).toBe(capture.topic);
    expectSameAsCapture(capture, answer.body);
  });

  it('poll while allocation runs: registrationState {registrationId, status: assigning}', async () => {
    const capture = loadCapture('poll-assigning');
    const device = await mqttDevice('hold-golden-2', groupDeviceKey('custom', 'hold-golden-2'));
    const accepted = await device.request(REGISTER('1'), JSON.stringify({ registrationId: 'hold-golden-2' }), '1');
    const { operationId } = accepted.body as { operationId: string };
    const answer = await device.request(POLL('2', operationId), ' ', '2');
    expect(answer.topic).toBe('$dps/registrations/res/202/?$rid=2&retry-after=3');
    expectSameAsCapture(capture, answer.body);
    expect((answer.body as { registrationState: { registrationId: string } }).registrationState.registrationId).toBe(
      'hold-golden-2',
    );
  });

  it('assigned by a group enrollment: attestation block first, trimmed timestamps, Cosmos etag', async () => {
    const capture = loadCapture('assigned-group');
    const device = await mqttDevice('golden-hashed-1', groupDeviceKey('hashed', 'golden-hashed-1'));
    const answer = await registerAndFinish(device, 'golden-hashed-1');
    expect(answer.topic).toMatch(/^\$dps\/registrations\/res\/200\/\?\$rid=\d+$/);
    expectSameAsCapture(capture, answer.body);
  });

  it("failed because the webhook answered 400: 400207 with DPS's message", async () => {
    const capture = loadCapture('failed-webhook-status');
    const device = await mqttDevice('fail400-golden', groupDeviceKey('custom', 'fail400-golden'));
    const answer = await registerAndFinish(device, 'fail400-golden');
    expect(answer.status).toBe(200);
    expectSameAsCapture(capture, answer.body);
  });

  it('failed because the webhook cannot be reached: "An error occurred while sending the request."', async () => {
    const capture = loadCapture('failed-webhook-unreachable');
    const device = await mqttDevice('golden-unreachable', groupDeviceKey('unreachable', 'golden-unreachable'));
    const answer = await registerAndFinish(device, 'golden-unreachable');
    expectSameAsCapture(capture, answer.body);
  });

  it('a wrong key over MQTT: CONNECT accepted, then res/401 with 401000', async () => {
    const capture = loadCapture('unauthorized-mqtt');
    const device = await mqttDevice('golden-wrong-key-mqtt', generateSymmetricKey());
    const answer = await device.request(
      REGISTER('1'),
      JSON.stringify({ registrationId: 'golden-wrong-key-mqtt' }),
      '1',
    );
    expect(answer.topic).toBe(capture.topic);
    expectSameAsCapture(capture, answer.body);
  });

  it('a wrong key over HTTPS: 401 with 401002, JSON, x-ms-request-id = trackingId', async () => {
    const capture = loadCapture('unauthorized-https');
    const id = 'golden-wrong-key-https';
    const answer = await rawRequest(emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2019-03-31`,
      headers: {
        Authorization: createRegistrationSasToken({
          idScope: ID_SCOPE,
          registrationId: id,
          key: generateSymmetricKey(),
        }),
      },
      body: JSON.stringify({ registrationId: id }),
    });
    expect(answer.status).toBe(capture.status);
    expectSameAsCapture(capture, answer.json);
    expect(answer.headers['content-type']).toBe(capture.headers?.['content-type']);
    expect(answer.headers['x-ms-request-id']).toBe((answer.json as { trackingId: string }).trackingId);
    expect(answer.headers['x-ms-error-code']).toBe('401002');
  });

  it('accepts a register body without registrationId on both transports (the newest C SDK sends none)', async () => {
    const device = await mqttDevice('golden-no-id', groupDeviceKey('hashed', 'golden-no-id'));
    const overMqtt = await device.request(REGISTER('1'), '{}', '1');
    expect(overMqtt.topic).toBe('$dps/registrations/res/202/?$rid=1&retry-after=3');
    expectSameAsCapture(loadCapture('register-assigning'), overMqtt.body);

    const id = 'golden-no-id-https';
    const overHttps = await rawRequest(emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2021-10-01`,
      headers: {
        Authorization: createRegistrationSasToken({
          idScope: ID_SCOPE,
          registrationId: id,
          key: groupDeviceKey('hashed', id),
        }),
      },
      body: '{"payload":{"modelId":"dtmi:golden;1"}}',
    });
    expect(overHttps.status).toBe(202);
    expect(overHttps.headers['retry-after']).toBe('3');
    expectSameAsCapture(loadCapture('register-assigning'), overHttps.json);
  });
});

describe('the webhook request, as real DPS sent it (golden file)', () => {
  it("has the capture's keys, order and values but for ids, times and the Function app address", async () => {
    const capture = loadCapture('webhook-request');
    const toasters = 'contoso-toasters-hub-1098.azure-devices.net';
    const groupKey = generateSymmetricKey();
    const hook = await startWebhook(() => ({ body: { iotHubHostName: toasters } }));
    const state = tempStateDir();
    try {
      const { emulator: tutorial } = await startTestEmulator(
        testEmulatorOptions(
          {
            idScope: ID_SCOPE,
            iotHubs: [{ hostName: toasters }],
            enrollmentGroups: [
              {
                enrollmentGroupId: 'contoso-custom-allocated-devices',
                attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey } },
                reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
                allocationPolicy: 'custom',
                iotHubs: [toasters],
                customAllocationDefinition: { webhookUrl: hook.url, apiVersion: '2021-10-01' },
              },
            ],
          },
          state.path,
        ),
      );
      try {
        const payload = { MyDeviceFirmwareVersion: '12.0.2.5', MyDeviceProvisioningVersion: '1.0.0.0' };
        await register(tutorial, 'contoso-toaster-007', deriveDeviceKey(groupKey, 'contoso-toaster-007'), { payload });
        const [call] = hook.callsFor('contoso-toaster-007');
        expectSameAsCapture(capture, JSON.parse(call?.rawBody ?? '{}'));
      } finally {
        await tutorial.stop();
      }
    } finally {
      state.remove();
      await hook.close();
    }
  });
});
