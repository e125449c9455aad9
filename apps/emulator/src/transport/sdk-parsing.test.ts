import {
  createRegistrationSasToken,
  DPS_TIMESTAMP_PATTERN,
  DpsErrorCode,
  deriveDeviceKey,
  generateSymmetricKey,
} from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { DeviceApi, type DeviceApiResponse, errorResponse, MAX_RETRY_AFTER_SECONDS } from '../core/device-api.js';
import { enrollmentSet } from '../core/model.js';
import { RegistrationService } from '../core/registrations.js';
import { MemoryRegistrationStore } from '../core/store.js';
import { groupEnrollment } from '../testing/enrollments.js';
import {
  cAzSpanAtou32,
  cLegacyRetryAfter,
  cParseResponseTopic,
  cReadPayload,
  nodeRetryAfterMs,
  pythonInt10,
  pythonParseResponseTopic,
} from '../testing/sdk-parsers.js';
import { clientErrorResponse } from './https-client-errors.js';
import { responseHeaders } from './https-headers.js';
import { asciiJson, responseTopic } from './mqtt-topics.js';

// Every answer the emulator can send, through the same encoders its MQTT and HTTPS transports use,
// parsed exactly as the Python SDK and the Embedded C SDK parse them (ports with source lines in
// ../testing/sdk-parsers.ts).

const SCOPE = '0ne00000A0A';
const keys = { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };
const hashedGroup = groupEnrollment('h', keys, { allocationPolicy: 'hashed' });
const customGroup = groupEnrollment('c', keys, {
  allocationPolicy: 'custom',
  customAllocationDefinition: { webhookUrl: 'http://127.0.0.1:9/api', apiVersion: '2021-10-01' },
});
const disabledGroup = groupEnrollment('d', keys, { provisioningStatus: 'disabled' });

/** Collects one of each answer the device API gives, for a retry-after value. */
async function everyAnswer(retryAfterSeconds: number): Promise<DeviceApiResponse[]> {
  let release: (() => void) | undefined;
  const service = new RegistrationService({
    model: {
      idScope: SCOPE,
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [{ hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true }],
      enrollments: enrollmentSet([customGroup]),
    },
    store: new MemoryRegistrationStore(),
    callWebhook: (_url, body) =>
      new Promise((resolve) => {
        const id = (JSON.parse(body) as { deviceRuntimeContext: { registrationId: string } }).deviceRuntimeContext
          .registrationId;
        const answer = (status: number, text: string) =>
          resolve({ kind: 'response', status, body: text, latencyMs: 1 });
        if (id === 'dev-assigned') release = () => answer(200, '{"iotHubHostName":"a.net","payload":{"é":1}}');
        else answer(400, '{}');
      }),
    webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
  });
  const api = new DeviceApi(service, { retryAfterSeconds, pollHoldMs: 1 });
  const token = (id: string, key = deriveDeviceKey(keys.primaryKey, id)) =>
    service.attest({
      requestedIdScope: SCOPE,
      registrationId: id,
      token: createRegistrationSasToken({ idScope: SCOPE, registrationId: id, key }),
    });
  const answers: DeviceApiResponse[] = [];
  const registered = api.register(token('dev-assigned'), '{"registrationId":"dev-assigned"}', 'mqtt');
  answers.push(registered);
  const { operationId } = registered.body as { operationId: string };
  answers.push(await api.operationStatus(token('dev-assigned'), operationId, 'mqtt')); // 202, still assigning
  release?.();
  await service.whenIdle();
  answers.push(await api.operationStatus(token('dev-assigned'), operationId, 'mqtt')); // 200 assigned
  const failed = api.register(token('dev-failed'), '{}', 'https');
  await service.whenIdle();
  answers.push(
    await api.operationStatus(token('dev-failed'), (failed.body as { operationId: string }).operationId, 'https'),
  );
  answers.push(api.statusLookup(token('dev-assigned')));
  const wrong = token('dev-x', generateSymmetricKey());
  answers.push(api.register(wrong, '{}', 'mqtt'), api.register(wrong, '{}', 'https'));
  answers.push(api.register(token('dev-y'), '{"registrationId":', 'mqtt'));
  answers.push(api.register(token('dev-y'), '{"registrationId":"other"}', 'mqtt'));
  answers.push(await api.operationStatus(token('dev-y'), '4.0.0', 'mqtt'));
  answers.push(api.statusLookup(token('never')));

  const disabledService = new RegistrationService({
    model: {
      idScope: SCOPE,
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [],
      enrollments: enrollmentSet([disabledGroup, hashedGroup]),
    },
    store: new MemoryRegistrationStore(),
    callWebhook: async () => ({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 }),
    webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
  });
  const disabledApi = new DeviceApi(disabledService, { retryAfterSeconds });
  const disabledToken = disabledService.attest({
    requestedIdScope: SCOPE,
    registrationId: 'dev-d',
    token: createRegistrationSasToken({
      idScope: SCOPE,
      registrationId: 'dev-d',
      key: deriveDeviceKey(keys.primaryKey, 'dev-d'),
    }),
  });
  const started = disabledApi.register(disabledToken, '{}', 'mqtt');
  await disabledService.whenIdle();
  answers.push(
    await disabledApi.operationStatus(disabledToken, (started.body as { operationId: string }).operationId, 'mqtt'),
  );

  // Every error code the emulator defines, and the answers to requests Node's HTTP parser refuses.
  for (const code of Object.values(DpsErrorCode)) answers.push(errorResponse(code, `message for ${code}`));
  const limits = { maxHeaderSize: 16384, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000 };
  for (const code of ['HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT', 'HPE_INVALID_METHOD']) {
    const answer = clientErrorResponse({ code, message: 'x' }, limits);
    if (answer) answers.push(answer);
  }
  return answers;
}

const statuses = (answers: DeviceApiResponse[]) => new Set(answers.map((a) => a.status));

describe('every answer, parsed as the Python and C SDKs parse it', () => {
  it.each([0, 1, 3, MAX_RETRY_AFTER_SECONDS])('with retry-after %i', async (retryAfter) => {
    const answers = await everyAnswer(retryAfter);
    // 403, 409, 412 and 415 come from the service API's codes (DpsErrorCode holds both APIs' codes).
    expect(statuses(answers)).toEqual(new Set([200, 202, 400, 401, 403, 404, 405, 408, 409, 412, 415, 429, 431, 500]));
    expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
    for (const answer of answers) {
      // MQTT: the response topic for a Python request id (a uuid4) and an Embedded C one ("1").
      for (const rid of ['0b7a6f9e-2c55-4a42-9d8e-7f3f4c1e2a10', '1']) {
        const topic = responseTopic(answer.status, rid, answer.retryAfterSeconds);
        const python = pythonParseResponseTopic(topic);
        expect(python).toEqual({ statusCode: answer.status, requestId: rid, retryAfter: answer.retryAfterSeconds });
        expect(cParseResponseTopic(topic)).toEqual({
          status: answer.status,
          retryAfterSeconds: answer.retryAfterSeconds ?? 0,
        });
      }
      // HTTPS: the retry-after header as the azure-iot-sdk-c HTTP transport reads it.
      const header = responseHeaders(answer, 0)['retry-after'];
      if (answer.status === 202) {
        expect(header).toBe(String(retryAfter));
        expect(cLegacyRetryAfter(String(header))).toBe(Math.min(Math.max(retryAfter, 1), 300));
        expect(nodeRetryAfterMs(String(header))).toBe(retryAfter * 1000);
      } else {
        expect(header).toBeUndefined();
      }

      // Payloads: Python json.loads of UTF-8; Embedded C's field rules; timestamps in DPS's form.
      const payload = answer.status < 300 ? asciiJson(answer.body) : JSON.stringify(answer.body);
      expect(JSON.parse(Buffer.from(payload, 'utf8').toString('utf8'))).toEqual(answer.body);
      const read = cReadPayload(payload);
      if (answer.status < 300) expect(read.operationStatus ?? 'record').toBeTruthy();
      else expect(read.errorCode).toBe((answer.body as { errorCode: number }).errorCode);
      for (const timestamp of read.timestamps) expect(timestamp).toMatch(DPS_TIMESTAMP_PATTERN);
      if (answer.status >= 300) expect(read.timestamps[0]).toMatch(/\.\d{7}Z$/);
    }
  });

  it('never sends a retry-after either SDK rejects: fractions cannot be configured', () => {
    // What the SDKs would do with the fractions the emulator used to send (0.05 in tests, 0.2 in the README).
    for (const fraction of ['0.05', '0.2']) {
      expect(() => pythonInt10(fraction)).toThrow(/ValueError/);
      expect(() => cAzSpanAtou32(fraction)).toThrow(/AZ_ERROR_UNEXPECTED_CHAR/);
      expect(() => pythonParseResponseTopic(`$dps/registrations/res/202/?$rid=1&retry-after=${fraction}`)).toThrow(
        /ValueError/,
      );
    }
    const service = new RegistrationService({
      model: { idScope: SCOPE, defaultAllocationPolicy: 'hashed', linkedHubs: [], enrollments: enrollmentSet([]) },
      store: new MemoryRegistrationStore(),
      callWebhook: async () => ({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 }),
      webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
    });
    for (const bad of [0.05, 0.2, 2.5, -1, MAX_RETRY_AFTER_SECONDS + 1]) {
      expect(() => new DeviceApi(service, { retryAfterSeconds: bad })).toThrow(RangeError);
    }
    // Every value that can be configured parses to itself in both SDKs.
    for (let seconds = 0; seconds <= MAX_RETRY_AFTER_SECONDS; seconds++) {
      const topic = responseTopic(202, '1', seconds);
      expect(pythonParseResponseTopic(topic).retryAfter).toBe(seconds);
      expect(cParseResponseTopic(topic).retryAfterSeconds).toBe(seconds);
    }
  });

  it('the ports behave as their sources', () => {
    expect(pythonInt10(' 3 ')).toBe(3);
    expect(pythonInt10('1_0')).toBe(10);
    expect(() => pythonInt10('')).toThrow();
    expect(() => pythonInt10('3s')).toThrow();
    expect(cAzSpanAtou32('+3')).toBe(3);
    expect(() => cAzSpanAtou32('+')).toThrow();
    expect(() => cAzSpanAtou32(' 3')).toThrow();
    expect(() => cAzSpanAtou32('4294967296')).toThrow();
    expect(cAzSpanAtou32('4294967295')).toBe(4294967295);
    expect(cParseResponseTopic('$dps/registrations/res/200/?$rid=1')).toEqual({ status: 200, retryAfterSeconds: 0 });
    expect(() => cParseResponseTopic('$dps/registrations/res/200/?$rid=1&retry-after=')).toThrow();
    expect(cLegacyRetryAfter('0')).toBe(1);
    expect(cLegacyRetryAfter('0.2')).toBe(1);
    expect(cLegacyRetryAfter('301')).toBe(1);
    expect(cLegacyRetryAfter(undefined)).toBe(1);
    expect(nodeRetryAfterMs('0')).toBe(0);
    expect(nodeRetryAfterMs(undefined)).toBe(2000);
    expect(() => cReadPayload('{"operationId":"x","status":"registering"}')).toThrow();
    expect(() => cReadPayload('{"registrationState":{"assignedHub":"h"}}')).toThrow();
  });
});
