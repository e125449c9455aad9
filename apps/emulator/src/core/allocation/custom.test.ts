import { DpsErrorCode } from '@dpskit/contracts';
import { HEATPUMP_REQUEST_2019_03_31, TOASTER_REQUEST_2021_10_01 } from '@dpskit/contracts/fixtures';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { MemoryEnrollmentMetaStore, resolveConfig } from '../../config/resolve.js';
import { initialTwinProblem } from '../enrollments/validate.js';
import {
  buildAllocationRequest,
  DPS_WEBHOOK_RETRY,
  interpretWebhookOutcome,
  retryDelayMs,
  runCustomAllocation,
  type WebhookCallOutcome,
} from './custom.js';

const TOASTERS = 'contoso-toasters-hub-1098.azure-devices.net';
const HEATPUMPS = 'contoso-heatpumps-hub-1098.azure-devices.net';
const LINKED = [TOASTERS, HEATPUMPS];

/** The tutorial's enrollment group, through the config path, with the logged etag and timestamps. */
function tutorialGroup(webhookUrl: string, apiVersion: string, etag: string, timestamp: string) {
  const config = parseConfig({
    iotHubs: LINKED.map((hostName) => ({ hostName })),
    enrollmentGroups: [
      {
        enrollmentGroupId: 'contoso-custom-allocated-devices',
        allocationPolicy: 'custom',
        iotHubs: [TOASTERS],
        customAllocationDefinition: { webhookUrl, apiVersion },
        reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
      },
    ],
  });
  const [group] = resolveConfig(config, new MemoryEnrollmentMetaStore()).model.enrollments.groups;
  if (!group) throw new Error('no group');
  // Assigning existing keys keeps their position, so the serialized order is the resolver's.
  group.record.etag = etag;
  group.record.createdDateTimeUtc = timestamp;
  group.record.lastUpdatedDateTimeUtc = timestamp;
  return group;
}

describe('buildAllocationRequest', () => {
  const payload = { MyDeviceFirmwareVersion: '12.0.2.5', MyDeviceProvisioningVersion: '1.0.0.0' };

  it('reproduces the request body DPS logged in the tutorial (2021-10-01), byte for byte', () => {
    const enrollment = tutorialGroup(
      'https://contoso-function-app-1098.azurewebsites.net/api/HttpTrigger1?code=secret-function-key',
      '2021-10-01',
      '"0000f176-0000-0700-0000-62eaad1e0000"',
      '2022-08-03T17:15:10.8464255Z',
    );
    const request = buildAllocationRequest({
      enrollment,
      registrationId: 'contoso-toaster-007',
      payload,
      linkedHubs: [TOASTERS],
    });
    expect(JSON.stringify(request)).toBe(TOASTER_REQUEST_2021_10_01);
  });

  it('reproduces the 2019-03-31 body too, and never includes keys', () => {
    const enrollment = tutorialGroup(
      'https://contoso-function-app.azurewebsites.net/api/HttpTrigger1?code=k',
      '2019-03-31',
      '"e8002126-0000-0100-0000-5f6b2a570000"',
      '2020-09-23T10:58:31.62286Z',
    );
    const request = buildAllocationRequest({
      enrollment,
      registrationId: 'contoso-heatpump-088',
      payload,
      linkedHubs: [TOASTERS],
    });
    const text = JSON.stringify(request);
    expect(text).toBe(HEATPUMP_REQUEST_2019_03_31);
    expect(enrollment.keys?.primaryKey).toBeTruthy();
    expect(text).not.toContain(enrollment.keys?.primaryKey as string);
  });

  it('adds currentIotHubHostName and currentDeviceId on re-registration, and omits an absent payload', () => {
    const enrollment = tutorialGroup(
      'http://localhost:7071/api/allocate',
      '2021-10-01',
      '"e"',
      '2024-01-01T00:00:00.0000000Z',
    );
    const request = buildAllocationRequest({
      enrollment,
      registrationId: 'contoso-toaster-007',
      current: { hub: TOASTERS, deviceId: 'contoso-toaster-007' },
      linkedHubs: LINKED,
    });
    expect(request.deviceRuntimeContext).toEqual({
      registrationId: 'contoso-toaster-007',
      currentIotHubHostName: TOASTERS,
      currentDeviceId: 'contoso-toaster-007',
      symmetricKey: {},
    });
    expect(Object.keys(request)).toEqual(['enrollmentGroup', 'deviceRuntimeContext', 'linkedHubs']);
  });
});

describe('interpretWebhookOutcome', () => {
  const response = (status: number, body: unknown): WebhookCallOutcome => ({
    kind: 'response',
    status,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  it('assigns a linked hub with the twin and payload, in the linked hub spelling', () => {
    const twin = { tags: { t: 1 } };
    expect(
      interpretWebhookOutcome(
        response(200, { iotHubHostName: TOASTERS.toUpperCase(), initialTwin: twin, payload: { a: 1 } }),
        LINKED,
      ),
    ).toEqual({
      kind: 'assigned',
      hub: TOASTERS,
      initialTwin: twin,
      payload: { a: 1 },
    });
    expect(
      interpretWebhookOutcome(response(200, { iotHubHostName: TOASTERS, initialTwin: null, extra: true }), LINKED),
    ).toEqual({
      kind: 'assigned',
      hub: TOASTERS,
      initialTwin: null,
    });
  });

  it.each([
    [
      'an empty hub',
      response(200, { iotHubHostName: '' }),
      DpsErrorCode.CustomAllocationIotHubNotSpecified,
      'no iotHubHostName',
    ],
    [
      'a null hub',
      response(200, { iotHubHostName: null }),
      DpsErrorCode.CustomAllocationIotHubNotSpecified,
      'no iotHubHostName',
    ],
    ['no hub at all', response(200, {}), DpsErrorCode.CustomAllocationIotHubNotSpecified, 'no iotHubHostName'],
    [
      'a hub outside linkedHubs',
      response(200, { iotHubHostName: 'x.net' }),
      DpsErrorCode.CustomAllocationFailed,
      '"x.net", which is not one of the linked hubs',
    ],
    ['401', response(401, {}), DpsErrorCode.CustomAllocationUnauthorizedAccess, '(401)'],
    ['400', response(400, {}), DpsErrorCode.CustomAllocationFailed, 'Custom allocation failed with status code: 400'],
    [
      '404',
      response(404, 'nope'),
      DpsErrorCode.CustomAllocationFailed,
      'Custom allocation failed with status code: 404',
    ],
    [
      'a redirect',
      response(302, ''),
      DpsErrorCode.CustomAllocationFailed,
      'Custom allocation failed with status code: 302',
    ],
    ['a body that is not JSON', response(200, '<html>'), DpsErrorCode.CustomAllocationFailed, 'not valid JSON'],
    [
      'a payload nested 40,000 deep',
      response(200, `{"iotHubHostName":"${TOASTERS}","payload":{"a":${'['.repeat(40_000)}${']'.repeat(40_000)}}}`),
      DpsErrorCode.CustomAllocationFailed,
      'not valid JSON (it is nested more than 64 levels deep)',
    ],
    [
      'an initialTwin nested 40,000 deep',
      response(
        200,
        `{"iotHubHostName":"${TOASTERS}","initialTwin":{"tags":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}}`,
      ),
      DpsErrorCode.CustomAllocationFailed,
      'nested more than 64 levels deep',
    ],
    ['a JSON array', response(200, '[]'), DpsErrorCode.CustomAllocationFailed, 'the body is an array, not an object'],
    [
      'an initialTwin the hub would refuse',
      response(200, {
        iotHubHostName: TOASTERS,
        // Nine strings of 4,000 (a twin string value is at most 4 KB).
        initialTwin: {
          properties: { desired: Object.fromEntries([...'abcdefghi'].map((k) => [k, 'x'.repeat(4000)])) },
        },
      }),
      DpsErrorCode.CustomAllocationFailed,
      "not a valid allocation response (initialTwin.properties.desired: desired is 36009 bytes by IoT Hub's twin size measure, over its 32768-byte limit).",
    ],
    [
      'a string payload',
      response(200, { iotHubHostName: TOASTERS, payload: 's' }),
      DpsErrorCode.CustomAllocationFailed,
      'payload:',
    ],
    [
      'a timeout',
      { kind: 'timeout', timeoutMs: 123 } as const,
      DpsErrorCode.CustomAllocationFailed,
      'within 123 ms (timeout)',
    ],
    [
      'a refused connection',
      { kind: 'connection-error', reason: 'connect ECONNREFUSED 127.0.0.1:1' } as const,
      DpsErrorCode.CustomAllocationFailed,
      'An error occurred while sending the request.',
    ],
    [
      'an oversized body',
      { kind: 'response', status: 200, body: '', bodyError: 'the body is larger than 10 bytes' } as const,
      DpsErrorCode.CustomAllocationFailed,
      'larger than 10 bytes',
    ],
  ])('fails %s', (_what, outcome, errorCode, message) => {
    const result = interpretWebhookOutcome(outcome, LINKED, initialTwinProblem);
    expect(result).toMatchObject({ kind: 'failed', errorCode });
    expect(result.kind === 'failed' && result.errorMessage).toContain(message);
  });

  it.each([429, 500, 503, 504, 599])('retries %i', (status) => {
    expect(interpretWebhookOutcome(response(status, ''), LINKED)).toEqual({ kind: 'retry', status });
  });
});

describe('runCustomAllocation', () => {
  const enrollment = tutorialGroup(
    'http://localhost:7071/api/allocate?code=k',
    '2021-10-01',
    '"e"',
    '2024-01-01T00:00:00.0000000Z',
  );
  const request = buildAllocationRequest({ enrollment, registrationId: 'dev', linkedHubs: LINKED });

  it('follows DPS schedule for >= 429: 10 retries, 1 s then +9 s each, then 400207 with the last status', async () => {
    const waits: number[] = [];
    let calls = 0;
    const { decision, webhook } = await runCustomAllocation(
      'http://localhost:7071/api/allocate?code=k',
      request,
      'masked',
      {
        call: async () => {
          calls++;
          return { kind: 'response', status: calls % 2 ? 503 : 429, body: '', latencyMs: 2 };
        },
        sleep: async (ms) => {
          waits.push(ms);
        },
        retry: DPS_WEBHOOK_RETRY,
      },
    );
    expect(waits).toEqual([1000, 10000, 19000, 28000, 37000, 46000, 55000, 64000, 73000, 82000]);
    expect(calls).toBe(11);
    expect(decision).toEqual({
      kind: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 503',
    });
    expect(webhook).toEqual({ url: 'masked', status: 503, latencyMs: 22, attempts: 11 });
    expect(retryDelayMs({ count: 1, initialIntervalMs: 5, incrementMs: 7 }, 2)).toBe(19);
  });

  it('stops at the first final answer and posts exactly the request JSON to the URL with its query', async () => {
    const seen: { url: string; body: string }[] = [];
    const answers: (WebhookCallOutcome & { latencyMs: number })[] = [
      { kind: 'response', status: 429, body: '', latencyMs: 1 },
      { kind: 'response', status: 200, body: JSON.stringify({ iotHubHostName: HEATPUMPS }), latencyMs: 1 },
    ];
    const result = await runCustomAllocation('http://localhost:7071/api/allocate?code=k', request, 'masked', {
      call: async (url, body) => {
        seen.push({ url, body });
        return answers.shift() ?? { kind: 'timeout', timeoutMs: 1, latencyMs: 1 };
      },
      sleep: async () => {},
      retry: { count: 5, initialIntervalMs: 0, incrementMs: 0 },
    });
    expect(result.decision).toEqual({ kind: 'assigned', hub: HEATPUMPS });
    expect(result.webhook.attempts).toBe(2);
    expect(seen).toEqual([
      { url: 'http://localhost:7071/api/allocate?code=k', body: JSON.stringify(request) },
      { url: 'http://localhost:7071/api/allocate?code=k', body: JSON.stringify(request) },
    ]);
  });
});
