import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A, ID_SCOPE } from '../testing/fixtures.js';
import { deviceClient, Message } from '../testing/hub-sdk.js';
import { hubDeviceToken, type RawResponse, rawRequest, registryToken, serviceToken } from '../testing/raw-https.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// Answers the request line and headers decide — 404/405, a missing or undated api-version, the
// service API's 415 — are given from the headers, as the 401s are, the body not read. Before, the
// listener read the whole body first: a client that announced a body and sent none waited for the
// idle timeout and was answered 408, not what its request line said.

let bed: TestBedWithWebhook;
// Short, so that the old code's 408 (the body never came) is quick to see.
const IDLE_TIMEOUT_MS = 2000;

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ limits: { idleTimeoutMs: IDLE_TIMEOUT_MS } });
});
afterAll(() => bed?.close());

interface Case {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  status: number;
  /** The JSON body's fields that say what was refused. */
  expected: Record<string, unknown>;
}

const dps = (errorCode: number, message: string) => ({ errorCode, message });
const hubBody = (code: string, message: string) => ({ Message: `ErrorCode:${code};${message}` });

function cases(deviceToken: string): Case[] {
  const service = { Authorization: serviceToken(bed.emulator) };
  const registry = { Host: HUB_A, Authorization: registryToken(HUB_A) };
  return [
    {
      name: 'DPS device API, no resource',
      method: 'PUT',
      path: '/nowhere/at/all',
      status: 404,
      expected: {
        errorCode: 404001,
        message: expect.stringMatching(/^Neither DPS API has a resource at \/nowhere\/at\/all: /),
      },
    },
    {
      name: 'DPS device API, an unparseable URL',
      method: 'PUT',
      path: '//[',
      status: 404,
      expected: { errorCode: 404001, message: expect.stringMatching(/^Neither DPS API has a resource at \/\/\[: /) },
    },
    {
      name: 'DPS device API, a method the route does not allow',
      method: 'DELETE',
      path: `/${ID_SCOPE}/registrations/hf-1/register?api-version=2021-06-01`,
      status: 405,
      expected: dps(405001, `The DPS device API expects PUT for /${ID_SCOPE}/registrations/hf-1/register, not DELETE.`),
    },
    {
      name: 'DPS device API, no api-version',
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/hf-1/register`,
      status: 400,
      expected: dps(400001, 'The api-version query parameter is required (for example api-version=2021-10-01).'),
    },
    {
      name: 'DPS device API, an undated api-version',
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/hf-1/register?api-version=latest`,
      status: 400,
      expected: dps(400004, 'Unsupported API version latest.'),
    },
    {
      name: 'service API, no resource',
      method: 'PUT',
      path: '/enrollmentGroups/a/b/c?api-version=2021-10-01',
      headers: service,
      status: 404,
      expected: { errorCode: 404001, message: expect.stringMatching(/^The DPS service API has no resource at /) },
    },
    {
      name: 'service API, a method the route does not allow',
      method: 'POST',
      path: '/enrollments/hf-1?api-version=2021-10-01',
      headers: service,
      status: 405,
      expected: {
        errorCode: 405001,
        message: expect.stringMatching(/^The DPS service API allows .* for \/enrollments\/hf-1, not POST\.$/),
      },
    },
    {
      name: 'service API, no api-version',
      method: 'PUT',
      path: '/enrollments/hf-1',
      headers: service,
      status: 400,
      expected: dps(400004, 'The api-version query parameter is required (e.g. 2021-10-01).'),
    },
    {
      name: 'service API, a body that is not JSON',
      method: 'PUT',
      path: '/enrollments/hf-1?api-version=2021-10-01',
      headers: { ...service, 'Content-Type': 'text/plain' },
      status: 415,
      expected: dps(
        415001,
        'Unsupported media type "text/plain": the DPS service API takes JSON bodies (Content-Type: application/json; charset=utf-8).',
      ),
    },
    {
      name: 'hub, no route',
      method: 'PUT',
      path: '/devices/hf-1/nowhere?api-version=2021-04-12',
      headers: registry,
      status: 404,
      expected: hubBody(
        'NotFound',
        'The emulated hub serves /devices, /devices/{id}, /devices/{id}/modules[/{moduleId}], POST /devices/query, /twins/{id}[/modules/{moduleId}], POST /twins/{id}[/modules/{moduleId}]/methods, GET /statistics/devices, POST /devices/{id}/messages/events and /devices/{id}/messages/deviceBound, not /devices/hf-1/nowhere.',
      ),
    },
    {
      name: 'hub, no hub named',
      method: 'PATCH',
      path: '/twins/hf-1?api-version=2021-04-12',
      headers: { Host: 'localhost' },
      status: 404,
      expected: {
        Message: expect.stringMatching(/^ErrorCode:IotHubNotFound;Neither the Host header nor the SAS token names/),
      },
    },
    {
      name: 'hub, no api-version',
      method: 'PATCH',
      path: '/twins/hf-1',
      headers: registry,
      status: 400,
      expected: hubBody('InvalidProtocolVersion', 'BadRequest'),
    },
    {
      name: 'hub registry, a method the route does not allow',
      method: 'POST',
      path: '/twins/hf-1?api-version=2021-04-12',
      headers: registry,
      status: 405,
      expected: hubBody('MethodNotAllowed', '/twins/hf-1 allows GET, PATCH, PUT, not POST.'),
    },
    {
      name: 'hub device API, a method the route does not allow',
      method: 'PUT',
      path: '/devices/hf-hub-device/messages/events?api-version=2021-04-12',
      headers: { Host: HUB_A, Authorization: deviceToken },
      status: 405,
      expected: hubBody('MethodNotAllowed', '/devices/hf-hub-device/messages/events allows POST, not PUT.'),
    },
    {
      name: 'hub device API, completing a cloud-to-device message none is locked',
      method: 'DELETE',
      path: '/devices/hf-hub-device/messages/devicebound/lock-1?api-version=2021-04-12',
      headers: { Host: HUB_A, Authorization: deviceToken },
      status: 412,
      expected: hubBody(
        'DeviceMessageLockLost',
        'No cloud-to-device message of hf-hub-device is locked under lock-1: never given, already settled, or its lock timed out (60 s).',
      ),
    },
  ];
}

let table: Case[];
beforeAll(async () => {
  const id = 'hf-hub-device';
  const key = groupDeviceKey('custom', id);
  await register(bed.emulator, id, key, { transport: 'https' });
  table = cases(hubDeviceToken(HUB_A, id, key));
});

const expectAnswer = (answer: RawResponse, c: Case) => {
  expect(answer.status, `${c.name}: ${answer.text}`).toBe(c.status);
  expect(answer.json, c.name).toMatchObject(c.expected);
};

describe('answered from the request line and headers, the body not read', () => {
  it('a body announced (64 KiB) and never sent: the answer at once, Connection: close', async () => {
    for (const c of table) {
      const answer = await rawRequest(bed.emulator, {
        method: c.method,
        path: c.path,
        headers: { ...c.headers, 'Content-Length': String(64 * 1024) },
        withholdBody: true,
      });
      expectAnswer(answer, c);
      expect(answer.headers.connection, c.name).toBe('close');
    }
  });

  it('the same answers with the body sent, and with none', async () => {
    for (const c of table) {
      expectAnswer(await rawRequest(bed.emulator, { ...c, body: '{"a":1}' }), c);
      expectAnswer(await rawRequest(bed.emulator, { ...c, body: 'x'.repeat(90 * 1024) }), c);
      if (c.status === 415) continue; // no body, no media type to refuse
      expectAnswer(await rawRequest(bed.emulator, { ...c, headers: { ...c.headers, 'Content-Length': '0' } }), c);
    }
  });
});

describe('a client that waits for 100 Continue before its body (Expect: 100-continue)', () => {
  it('gets the answer instead of 100 Continue, and never sends the body', async () => {
    const refusedCredentials: Case[] = [
      {
        name: 'hub registry, no token',
        method: 'PATCH',
        path: '/twins/hf-hub-device?api-version=2021-04-12',
        headers: { Host: HUB_A },
        status: 401,
        expected: hubBody('IotHubUnauthorizedAccess', 'Unauthorized'),
      },
      {
        name: 'service API, no token',
        method: 'PUT',
        path: '/enrollments/hf-1?api-version=2021-10-01',
        status: 401,
        expected: dps(401002, 'Unauthorized'),
      },
    ];
    for (const c of [...table, ...refusedCredentials]) {
      const answer = await rawRequest(bed.emulator, { ...c, body: 'x'.repeat(64 * 1024), expectContinue: true });
      expectAnswer(answer, c);
      expect(answer.continued, c.name).toBe(false);
      expect(answer.headers.connection, c.name).toBe('close');
    }
  });

  it('gets 100 Continue when its headers are accepted, and is served', async () => {
    const answer = await rawRequest(bed.emulator, {
      method: 'PATCH',
      path: '/twins/hf-hub-device?api-version=2021-04-12',
      headers: { Host: HUB_A, Authorization: registryToken(HUB_A), 'If-Match': '*' },
      body: JSON.stringify({ tags: { continued: true } }),
      expectContinue: true,
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.continued).toBe(true);
    expect(answer.json).toMatchObject({ deviceId: 'hf-hub-device', tags: { continued: true } });
  });
});

describe('the official device SDK over HTTPS', () => {
  it('settling a cloud-to-device message none is locked: 412 DeviceMessageLockLost; the device is served after', async () => {
    const id = 'hf-hub-device';
    const client = await deviceClient(bed.emulator, {
      hub: HUB_A,
      deviceId: id,
      key: groupDeviceKey('custom', id),
      transport: 'https',
    });
    try {
      await client.open();
      // Settling sends the User-Agent that only sending something computes (else it throws, an SDK bug).
      await client.sendEvent(new Message('before'));
      for (const settle of ['complete', 'reject', 'abandon'] as const) {
        const message = new Message('never sent');
        message.lockToken = `lock-${settle}`;
        // The SDK does not translate a settlement's error: a plain Error with the response.
        const err = await client[settle](message).then(
          () => undefined,
          (e: unknown) => e as { message?: string; responseBody?: unknown; response?: { statusCode?: number } },
        );
        expect(err, settle).toMatchObject({ message: 'Precondition Failed', response: { statusCode: 412 } });
        expect(String(err?.responseBody), settle).toMatch(
          /^\{"Message":"ErrorCode:DeviceMessageLockLost;No cloud-to-device message of hf-hub-device is locked under lock-/,
        );
      }
      await client.sendEvent(new Message('after'));
      expect(bed.emulator.telemetry(HUB_A, id).map((m) => m.body.toString())).toEqual(
        expect.arrayContaining(['before', 'after']),
      );
    } finally {
      await client.close();
    }
  });
});

describe('a keep-alive client', () => {
  type Send = (request: Case & { body?: string }) => Promise<RawResponse>;
  /** A keep-alive agent with one connection; `served()` a request the hub serves (200). */
  const keepAlive = async (run: (send: Send, served: () => Promise<RawResponse>) => Promise<void>) => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const send: Send = (request) => rawRequest(bed.emulator, { ...request, agent });
    const served = () =>
      rawRequest(bed.emulator, {
        method: 'GET',
        path: '/twins/hf-hub-device?api-version=2021-04-12',
        headers: { Host: HUB_A, Authorization: registryToken(HUB_A) },
        agent,
      });
    try {
      await run(send, served);
    } finally {
      agent.destroy();
    }
  };

  it('keeps its connection after an answer to a request without a body, or with one that came with the headers', () =>
    keepAlive(async (send, served) => {
      const first = await served();
      expect(first.status).toBe(200);
      const connection = first.port;
      expect(connection).toBeGreaterThan(0);
      for (const c of table) {
        if (c.status !== 415) {
          const none = await send(c);
          expectAnswer(none, c);
          expect(none.headers.connection, c.name).toBe('keep-alive');
          expect(none.port, c.name).toBe(connection);
        }
        const small = await send({ ...c, body: '{"a":1}' });
        expectAnswer(small, c);
        expect(small.headers.connection, c.name).toBe('keep-alive');
        expect(small.port, c.name).toBe(connection);
        const next = await served();
        expect(next.status, c.name).toBe(200);
        expect(next.port, c.name).toBe(connection);
      }
    }));

  it('gets the answer to a request whose large body is on its way, then the server serves its next request', () =>
    keepAlive(async (send, served) => {
      for (const c of table) {
        expectAnswer(await send({ ...c, body: 'x'.repeat(90 * 1024) }), c);
        const after = await served();
        expect(after.status, `${c.name}: ${after.text}`).toBe(200);
      }
    }));
});
