import tls from 'node:tls';
import {
  createRegistrationSasToken,
  createSasToken,
  DpsErrorCode,
  generateSymmetricKey,
  registrationResource,
} from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey, HUB_A, HUB_B, HUB_C, ID_SCOPE, ROGUE_HUB } from '../testing/fixtures.js';
import { rawRequest } from '../testing/raw-https.js';
import { fixedTokenSecurityClient, register, rejectionOf } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import type { TestWebhook } from '../testing/webhook-server.js';

// The official azure-iot-provisioning-device-http transport, unmodified, over real TLS: the
// only thing injected is an azure-iot-http-base whose agent trusts the CA and knows the port.

let emulator: Emulator;
let events: RegistrationEvent[];
let webhook: TestWebhook;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ emulator, events, webhook, close } = await startTestBedWithWebhook());
});

afterAll(() => close?.());

const https = { transport: 'https' as const };
const eventFor = (registrationId: string) => events.filter((e) => e.registrationId === registrationId).at(-1);
const tokenFor = (registrationId: string, key = groupDeviceKey('hashed', registrationId)) =>
  createRegistrationSasToken({ idScope: ID_SCOPE, registrationId, key });
const registerPath = (id: string) => `/${ID_SCOPE}/registrations/${id}/register?api-version=2019-03-31`;

describe('HTTPS: the SDK provisions', () => {
  it('by hashed and static allocation', async () => {
    const hashed = await register(emulator, 'hashed-http-1', groupDeviceKey('hashed', 'hashed-http-1'), https);
    expect(hashed).toMatchObject({ registrationId: 'hashed-http-1', deviceId: 'hashed-http-1', status: 'assigned' });
    expect([HUB_A, HUB_B]).toContain(hashed.assignedHub);
    const fixed = await register(emulator, 'static-http-1', groupDeviceKey('static', 'static-http-1'), https);
    expect(fixed).toMatchObject({ status: 'assigned', assignedHub: HUB_C });
    expect(eventFor('static-http-1')).toMatchObject({ transport: 'https', policy: 'static' });
  });

  it('by a custom webhook that receives the device payload and returns its own', async () => {
    const result = await register(emulator, 'toaster-http-7', groupDeviceKey('custom', 'toaster-http-7'), {
      ...https,
      payload: { preferredHub: 'b', modelId: 'dtmi:contoso:toaster;1' },
    });
    expect(result).toMatchObject({
      assignedHub: HUB_B,
      status: 'assigned',
      payload: { for: 'toaster-http-7', received: { preferredHub: 'b', modelId: 'dtmi:contoso:toaster;1' } },
    });
    expect(webhook.callsFor('toaster-http-7')[0]?.body.deviceRuntimeContext.payload).toEqual({
      preferredHub: 'b',
      modelId: 'dtmi:contoso:toaster;1',
    });
  });

  it('through a webhook 429 that DPS retries', async () => {
    const result = await register(
      emulator,
      'wh-429-then-200-http',
      groupDeviceKey('custom', 'wh-429-then-200-http'),
      https,
    );
    expect(result).toMatchObject({ status: 'assigned', payload: { call: 2 } });
  });
});

describe('HTTPS: failures as the SDK sees them', () => {
  it.each([
    ['wh-400-http', DpsErrorCode.CustomAllocationFailed, 'Custom allocation failed with status code: 400'],
    ['wh-401-http', DpsErrorCode.CustomAllocationUnauthorizedAccess, '(401)'],
    ['wh-unlinked-http', DpsErrorCode.CustomAllocationFailed, ROGUE_HUB],
    ['wh-slow-http', DpsErrorCode.CustomAllocationFailed, '(timeout)'],
    ['wh-non-json-http', DpsErrorCode.CustomAllocationFailed, 'not valid JSON'],
  ])('%s fails the registration with %i', async (id, errorCode, message) => {
    const err = await rejectionOf(register(emulator, id, groupDeviceKey('custom', id), https));
    expect(err.constructor.name).toBe('DeviceRegistrationFailedError');
    const registrationState = (err.result as { registrationState: { errorCode: number; errorMessage: string } })
      .registrationState;
    expect(registrationState.errorCode).toBe(errorCode);
    expect(registrationState.errorMessage).toContain(message);
  });

  it('raises UnauthorizedError for a wrong key, an expired token, another id and an unknown device', async () => {
    const expired = createSasToken({
      resource: registrationResource(ID_SCOPE, 'hashed-http-expired'),
      key: groupDeviceKey('hashed', 'hashed-http-expired'),
      expiresAt: Math.floor(Date.now() / 1000) - 1,
    });
    const attempts = [
      () => register(emulator, 'hashed-http-wrong', generateSymmetricKey(), https),
      () =>
        register(emulator, 'hashed-http-expired', '', {
          ...https,
          securityClient: fixedTokenSecurityClient('hashed-http-expired', expired),
        }),
      () =>
        register(emulator, 'hashed-http-thief', '', {
          ...https,
          securityClient: fixedTokenSecurityClient('hashed-http-thief', tokenFor('hashed-http-owner')),
        }),
      () => register(emulator, 'stranger-http', generateSymmetricKey(), https),
    ];
    for (const attempt of attempts) {
      const err = await rejectionOf(attempt());
      expect(err.name).toBe('UnauthorizedError');
      expect(JSON.parse(String(err.responseBody))).toMatchObject({ errorCode: 401002, message: 'Unauthorized' });
    }
    const ok = await register(emulator, 'hashed-http-after', groupDeviceKey('hashed', 'hashed-http-after'), https);
    expect(ok.status).toBe('assigned');
  });

  it('reports a disabled enrollment as status disabled (SyntaxError in the Node SDK)', async () => {
    const err = await rejectionOf(
      register(emulator, 'disabled-http', groupDeviceKey('disabled', 'disabled-http'), https),
    );
    expect(err.name).toBe('SyntaxError');
    expect(err.result).toMatchObject({ status: 'disabled' });
  });
});

describe('HTTPS: the REST surface', () => {
  const auth = (id: string) => ({ Authorization: tokenFor(id) });

  it('answers register with 202, retry-after and JSON; polls with 200 once assigned', async () => {
    const id = 'hashed-raw-1';
    const accepted = await rawRequest(emulator, {
      method: 'PUT',
      path: registerPath(id),
      headers: auth(id),
      body: JSON.stringify({ registrationId: id }),
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(accepted.headers['retry-after']).toBe('0');
    const { operationId } = accepted.json as { operationId: string };
    expect(accepted.json).toEqual({ operationId, status: 'assigning' });
    expect(accepted.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(accepted.headers['x-ms-error-code']).toBeUndefined();
    const location = new URL(String(accepted.headers.location));
    expect(location.pathname).toBe(`/${ID_SCOPE}/registrations/${id}/operations/${operationId}`);
    expect(location.searchParams.get('api-version')).toBe('2019-03-31');

    // Poll as a device does, honouring retry-after, until the operation leaves `assigning`.
    let done = await poll(id, operationId);
    for (let i = 0; i < 50 && done.status === 202; i++) {
      expect(done.json).toEqual({
        operationId,
        status: 'assigning',
        registrationState: { registrationId: id, status: 'assigning' },
      });
      expect(done.headers['retry-after']).toBe('0');
      done = await poll(id, operationId);
    }
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({
      operationId,
      status: 'assigned',
      registrationState: { registrationId: id, status: 'assigned' },
    });

    const lookup = await rawRequest(emulator, {
      method: 'POST',
      path: `/${ID_SCOPE}/registrations/${id}?api-version=2019-03-31`,
      headers: auth(id),
      body: JSON.stringify({ registrationId: id }),
    });
    expect(lookup.status).toBe(200);
    expect(lookup.json).toEqual((done.json as { registrationState: unknown }).registrationState);
  });

  it('answers bad requests with DPS error bodies and keeps serving', async () => {
    const id = 'hashed-raw-2';
    const cases = [
      {
        request: { method: 'PUT', path: registerPath(id), headers: auth(id), body: '{"registrationId":' },
        status: 400,
        code: 400001,
      },
      {
        request: {
          method: 'PUT',
          path: registerPath(id),
          headers: auth(id),
          body: JSON.stringify({ registrationId: 'someone-else' }),
        },
        status: 400,
        code: 400002,
      },
      {
        request: { method: 'PUT', path: registerPath(id), body: JSON.stringify({ registrationId: id }) },
        status: 401,
        code: 401002,
      },
      { request: { method: 'GET', path: registerPath(id), headers: auth(id) }, status: 405, code: 405001 },
      {
        request: { method: 'PUT', path: `/${ID_SCOPE}/registrations/${id}/register`, headers: auth(id), body: '{}' },
        status: 400,
        code: 400001,
      },
      { request: { method: 'GET', path: '/not/a/dps/path', headers: auth(id) }, status: 404, code: 404001 },
      // A path that is no valid URL (new URL() throws on it).
      {
        request: { method: 'GET', path: '//[/registrations/x/register', headers: auth(id) },
        status: 404,
        code: 404001,
      },
      {
        request: {
          method: 'GET',
          path: `/${ID_SCOPE}/registrations/${id}/operations/4.0000000000000000.00000000-0000-0000-0000-000000000000?api-version=2019-03-31`,
          headers: auth(id),
        },
        status: 404,
        code: 404006,
      },
      {
        request: {
          method: 'POST',
          path: `/${ID_SCOPE}/registrations/never-registered?api-version=2019-03-31`,
          headers: auth('never-registered'),
        },
        status: 404,
        code: 404001,
      },
      {
        request: { method: 'PUT', path: registerPath(id), headers: auth(id), body: 'x'.repeat(200 * 1024) },
        status: 400,
        code: 400001,
      },
    ];
    for (const { request, status, code } of cases) {
      const response = await rawRequest(emulator, request);
      expect({ path: request.path.slice(0, 60), status: response.status }).toEqual({
        path: request.path.slice(0, 60),
        status,
      });
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(response.json).toMatchObject({
        errorCode: code,
        message: expect.any(String),
        trackingId: expect.any(String),
        timestampUtc: expect.any(String),
      });
    }
    const ok = await register(emulator, id, groupDeviceKey('hashed', id), https);
    expect(ok.status).toBe('assigned');
  });

  it('refuses an api-version that is no version with 400004, as DPS refuses one it does not know', async () => {
    const id = 'hashed-raw-version';
    for (const version of ['garbage', '2019-03-31;x', `${'1'.repeat(3000)}`]) {
      for (const request of [
        {
          method: 'PUT',
          path: `/${ID_SCOPE}/registrations/${id}/register`,
          body: JSON.stringify({ registrationId: id }),
        },
        { method: 'POST', path: `/${ID_SCOPE}/registrations/${id}`, body: JSON.stringify({ registrationId: id }) },
      ]) {
        const response = await rawRequest(emulator, {
          ...request,
          path: `${request.path}?api-version=${encodeURIComponent(version)}`,
          headers: auth(id),
        });
        expect(response.status, response.text).toBe(400);
        expect(response.headers['x-ms-error-code']).toBe('400004');
        expect(response.json).toMatchObject({
          errorCode: 400004,
          message:
            version.length > 128
              ? `Unsupported API version ${version.slice(0, 128)}…(2872 more characters).`
              : `Unsupported API version ${version}.`,
        });
      }
    }
    // Dated versions, known to DPS or not, are served.
    for (const version of ['2019-03-31', '2021-06-01', '2030-01-01']) {
      const response = await rawRequest(emulator, {
        method: 'PUT',
        path: `/${ID_SCOPE}/registrations/${id}/register?api-version=${version}`,
        headers: auth(id),
        body: JSON.stringify({ registrationId: id }),
      });
      expect(response.status, response.text).toBe(202);
    }
  });

  it('answers what Node cannot parse as HTTP with a status and a DPS error body, then closes', async () => {
    const tooLarge = await rawRequest(emulator, {
      method: 'PUT',
      path: registerPath('hashed-raw-3'),
      headers: { ...auth('hashed-raw-3'), 'X-Padding': 'x'.repeat(20_000) },
      body: JSON.stringify({ registrationId: 'hashed-raw-3' }),
    });
    expect(tooLarge.status).toBe(431);
    expect(tooLarge.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(tooLarge.json).toMatchObject({ errorCode: 431001, message: expect.stringContaining('16384 bytes') });

    const garbage = await rawTlsExchange('NOT-HTTP\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4));
    expect(body).toMatchObject({ errorCode: 400001, message: expect.stringContaining('not valid HTTP/1.1') });

    const ok = await register(emulator, 'hashed-raw-3', groupDeviceKey('hashed', 'hashed-raw-3'), https);
    expect(ok.status).toBe('assigned');
  });

  it('answers the requests read before one Node cannot parse, in order, then its 400, and closes', async () => {
    // A pipelining client: a registration and a request for an unknown resource, then bytes that
    // are not HTTP, in one write. Each request read before the bad one gets its answer first.
    const id = 'hashed-raw-pipelined';
    const body = JSON.stringify({ registrationId: id });
    const answers = await rawTlsExchange(
      [
        `PUT ${registerPath(id)} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${tokenFor(id)}\r\n`,
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        'GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n',
        'NOT-HTTP\r\n\r\n',
      ].join(''),
    );
    // Each answer's status line follows the previous answer's body (no line break after a body).
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3}) [A-Z]/g)].map((match) => match[1]);
    expect(statuses).toEqual(['202', '404', '400']);
    expect(answers).toContain('not valid HTTP/1.1');
  });

  it('refuses a body that is not valid UTF-8 instead of registering a mangled payload', async () => {
    const id = 'hashed-raw-utf8';
    const body = Buffer.concat([
      Buffer.from(`{"registrationId":"${id}","payload":{"name":"`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}}'),
    ]);
    const response = await rawRequest(emulator, { method: 'PUT', path: registerPath(id), headers: auth(id), body });
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ errorCode: 400001, message: 'The request body is not valid UTF-8.' });
    expect(eventFor(id)).toBeUndefined();
  });
});

/** Writes `request` on a fresh TLS connection and resolves with everything received until the server closes it. */
function rawTlsExchange(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: 'localhost',
      port: emulator.endpoints.https?.port ?? 0,
      ca: emulator.caCertPem,
    });
    const chunks: Buffer[] = [];
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function poll(id: string, operationId: string) {
  return rawRequest(emulator, {
    method: 'GET',
    path: `/${ID_SCOPE}/registrations/${id}/operations/${operationId}?api-version=2019-03-31`,
    headers: { Authorization: tokenFor(id) },
    body: '{}',
  });
}
