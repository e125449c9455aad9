// The emulated hub's HTTPS answers against IoT Hub's (api-version, the shape of a server error),
// over real TLS. The official SDKs send only their own api-version (azure-iothub and
// azure-iot-device-http: 2021-04-12), so other versions go out raw (node:https, a registry SAS).
import https from 'node:https';
import { join } from 'node:path';
import { createSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, hubAgent, registryClient } from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from './core/hub-service.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to HUB_A's HTTPS API over TLS, signed with the registry's iothubowner key. */
function hubRequest(method: string, path: string): Promise<RawAnswer> {
  const token = createSasToken({
    resource: HUB_A,
    key: WELL_KNOWN_HUB_KEY,
    keyName: HUB_OWNER_POLICY_NAME,
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
  });
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: HUB_A, path, method, agent: hubAgent(bed.emulator), headers: { authorization: token } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** IoT Hub's REST error body: `Message: "ErrorCode:{code};{message}"` and a tracking id. */
function expectHubError(answer: RawAnswer, status: number, code: string, message: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['iothub-errorcode']).toBe(code);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['ExceptionMessage', 'Message']);
  expect(body.Message).toBe(`ErrorCode:${code};${message}`);
  expect(body.ExceptionMessage).toMatch(/^Tracking ID:[0-9a-f]{32}-TimeStamp:/);
}

describe('api-version on the hub paths', () => {
  it("answers a missing or non-version api-version as IoT Hub does (400 InvalidProtocolVersion) and serves the SDKs' own", async () => {
    const id = 'api-version-twin';
    await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    // IoT Hub's answer, as reported from the service (Azure/Industrial-IoT#708, azure-iot-sdks#828:
    // {"Message":"ErrorCode:InvalidProtocolVersion;BadRequest","ExceptionMessage":"Tracking ID:…"}).
    for (const query of [
      '',
      '?api-version=',
      '?api-version=garbage',
      '?api-version=2021-04-12x',
      '?api-version=2018-06',
      '?api-version=2021-04-12%0d%0aX-Injected:%201',
    ]) {
      // The registry's paths and the device API's (refused before its credentials are looked at).
      for (const [method, path] of [
        ['GET', `/twins/${id}`],
        ['GET', `/devices/${id}`],
        ['POST', `/devices/${id}/messages/events`],
      ] as const) {
        expectHubError(await hubRequest(method, `${path}${query}`), 400, 'InvalidProtocolVersion', 'BadRequest');
      }
    }
    // The reason is in the log: anyone can send these, so the first of each second in full, the
    // others counted in a line of their own (the HTTPS listener's limited warnings); none lost.
    const reasons = () => logged.filter((r) => r.event === 'hub.api-version');
    const full = () => reasons().filter((r) => r.suppressed === undefined);
    const counted = () => reasons().reduce((sum, r) => sum + ((r.suppressed as number | undefined) ?? 0), 0);
    await vi.waitFor(() => expect(full().length + counted()).toBe(18), { timeout: 30_000, interval: 50 });
    expect(full()[0]?.msg).toBe(`GET /twins/${id} → 400 InvalidProtocolVersion: no api-version`);
    expect(reasons().find((r) => r.suppressed !== undefined)).toMatchObject({
      level: 'warn',
      status: 400,
      reasons: { '400': expect.any(Number) },
    });
    // The value clipped and its control characters escaped, in a line in full (a second after the last).
    const last = full().at(-1);
    const wait = last ? Date.parse(last.time) + 1000 - Date.now() : 0;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 5));
    expectHubError(
      await hubRequest('GET', `/twins/${id}?api-version=2021-04-12%0d%0aX-Injected:%201`),
      400,
      'InvalidProtocolVersion',
      'BadRequest',
    );
    expect(full().at(-1)?.msg).toMatch(/api-version 2021-04-12.*X-Injected/);
    expect(
      reasons()
        .map((r) => r.msg)
        .join('\n'),
    ).not.toMatch(/[\r\n]X-Injected/);
    // Dated versions are served, the SDKs' (2021-04-12) and others alike.
    for (const version of ['2021-04-12', '2020-09-30', '2019-07-01-preview']) {
      const answer = await hubRequest('GET', `/twins/${id}?api-version=${version}`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ deviceId: id });
    }
    expect((await registryClient(bed.emulator, HUB_A).getTwin(id)).responseBody.deviceId).toBe(id);
  });
});

describe('a server error on a hub path', () => {
  it("is answered in IoT Hub's error shape (500 ServerError), which azure-iothub reads", async () => {
    const id = 'server-error-twin';
    const registry = registryClient(bed.emulator, HUB_A);
    await createDeviceKey(registry, id);
    // A real fault: another connection holds the state's write lock past the emulator's busy
    // timeout (5 s), so the twin's write fails.
    const stuck = new Database(join(bed.emulator.stateDir, 'emulator.db'));
    let error:
      | (Error & { responseBody?: string; response?: { statusCode?: number; headers: Record<string, unknown> } })
      | undefined;
    try {
      stuck.exec('BEGIN IMMEDIATE');
      try {
        error = await registry.updateTwin(id, { tags: { room: 'lab' } }, '*').then(
          () => undefined,
          (err: Error) => err,
        );
      } finally {
        stuck.exec('COMMIT');
      }
    } finally {
      stuck.close();
    }
    expect(error?.name).toBe('InternalServerError');
    expect(error?.message).toBe('Internal server error.');
    expect(error?.response?.statusCode).toBe(500);
    expect(error?.response?.headers['iothub-errorcode']).toBe('ServerError');
    const body = JSON.parse(String(error?.responseBody)) as Record<string, unknown>;
    expect(body).toEqual({
      Message: 'ErrorCode:ServerError;Internal server error.',
      ExceptionMessage: expect.stringMatching(/^Tracking ID:/),
    });
    expect(
      logged.some((r) => r.level === 'error' && r.event === 'https.request' && r.msg.includes('database is locked')),
    ).toBe(true);
    // And the hub goes on serving.
    await registry.updateTwin(id, { tags: { room: 'lab' } }, '*');
    expect((await registry.getTwin(id)).responseBody.tags).toEqual({ room: 'lab' });
  }, 60_000);
});
