import { closedPort } from '@dpskit/vitest-config/closed-port';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type HttpsDps, startHttpsDps } from '../testing/https-dps.js';
import { createTestPki, type TestPki } from '../testing/tls.js';
import { type RegisterOptions, registerDevice, retryBackoff } from './register.js';
import type { RegistrationOutcome, StatusUpdate } from './types.js';

// The real SDK (HTTP and MQTT transports, symmetric-key security client) against a small in-test
// HTTPS DPS responder over real TLS. The DPS side here is a fixture; the thing under test is device-sim.

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const ID_SCOPE = '0ne00000A0A';
const HUB = 'contoso-toasters-hub-1098.azure-devices.net';
const TUTORIAL_PAYLOAD = { MyDeviceFirmwareVersion: '12.0.2.5', MyDeviceProvisioningVersion: '1.0.0.0' };

let pki: TestPki;
let dps: HttpsDps;
const flakyRequests = new Map<string, number>();

beforeAll(async () => {
  pki = createTestPki();
  dps = await startHttpsDps({
    pki,
    idScope: ID_SCOPE,
    groupKey: GROUP_KEY,
    decide: (registrationId) => {
      if (registrationId.startsWith('contoso-toaster')) {
        return { kind: 'assigned', hub: HUB, payload: { welcome: registrationId } };
      }
      if (registrationId.startsWith('contoso-heatpump')) {
        return { kind: 'failed', errorCode: 400207, errorMessage: 'Custom allocation failed with status code: 400' };
      }
      if (registrationId.startsWith('disabled')) return { kind: 'disabled' };
      if (registrationId.startsWith('flaky')) {
        // Unavailable for the first two register requests of each flaky device, then assigned.
        const seen = (flakyRequests.get(registrationId) ?? 0) + 1;
        flakyRequests.set(registrationId, seen);
        return seen <= 2 ? { kind: 'unavailable' } : { kind: 'assigned', hub: HUB };
      }
      return { kind: 'no-status' };
    },
  });
});

afterAll(async () => {
  await dps?.close();
});

/** `registerDevice` through the real SDK's HTTP transport against the in-test responder, trusting its CA. */
function registerOverHttps(
  options: Omit<RegisterOptions, 'provisioningHost' | 'idScope' | 'transport' | 'ca'>,
): Promise<RegistrationOutcome> {
  return registerDevice({
    provisioningHost: dps.host,
    idScope: ID_SCOPE,
    transport: 'http',
    ca: pki.caPem,
    ...options,
  });
}

describe('registerDevice over HTTPS with the real SDK', () => {
  it('assigns the toaster, sends the payload and reports the tutorial status progression', async () => {
    const statuses: StatusUpdate[] = [];
    const outcome = await registerOverHttps({
      registrationId: 'contoso-toaster-007',
      groupKey: GROUP_KEY,
      payload: TUTORIAL_PAYLOAD,
      onStatus: (s) => statuses.push(s),
    });
    expect(outcome).toMatchObject({
      registrationId: 'contoso-toaster-007',
      transport: 'http',
      status: 'assigned',
      assignedHub: HUB,
      deviceId: 'contoso-toaster-007',
      payload: { welcome: 'contoso-toaster-007' },
    });
    expect(outcome.registrationState?.substatus).toBe('initialAssignment');
    expect(outcome.errorCode).toBeUndefined();
    expect(statuses.map((s) => s.sdkStatus)).toEqual([
      'PROV_DEVICE_REG_STATUS_CONNECTED',
      'PROV_DEVICE_REG_STATUS_ASSIGNING',
      'PROV_DEVICE_REG_STATUS_ASSIGNED',
    ]);
    expect(statuses[1]?.operationId).toMatch(/^4\.[0-9a-f]{16}\./);
    expect(statuses[1]?.nextPollMs).toBe(1000);

    const received = dps.registrations.find((r) => r.registrationId === 'contoso-toaster-007');
    expect(received?.payload).toEqual(TUTORIAL_PAYLOAD);
    expect(received?.userAgent).toBe('azure-iot-provisioning-device/1.9.1');
    // the Node SDK signs the raw resource (protocol notes §4.1)
    expect(received?.authorization).toContain(`sr=${ID_SCOPE}/registrations/contoso-toaster-007&`);
  });

  it('reports the heat pump as failed with the service error code, message and operation id', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'contoso-heatpump-088',
      deviceKey: 'NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=',
    });
    expect(outcome).toMatchObject({
      status: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 400',
      errorName: 'ProvisioningRegistrationFailedError',
    });
    expect(outcome.operationId).toMatch(/^4\./);
    expect(outcome.registrationState?.lastUpdatedDateTimeUtc).toMatch(/^\d{4}-/);
    expect(outcome.assignedHub).toBeUndefined();
  });

  it('maps a disabled answer to status disabled', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'disabled-device-1',
      groupKey: GROUP_KEY,
    });
    expect(outcome.status).toBe('disabled');
  });

  it('reports a wrong key as unauthorized with the DPS error code', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'contoso-toaster-008',
      deviceKey: 'NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=',
    });
    expect(outcome).toMatchObject({
      status: 'error',
      errorName: 'UnauthorizedError',
      errorCode: 401002,
      errorMessage: 'Unauthorized',
    });
  });

  it('turns a 200 without status (which crashes the stock SDK) into an error outcome', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'weird-device-1',
      groupKey: GROUP_KEY,
    });
    expect(outcome.status).toBe('error');
    expect(outcome.errorName).toBe('InvalidServiceResponseError');
    expect(outcome.errorMessage).toContain('no "status" field');
  });

  it('cancels while polling when the signal aborts', async () => {
    const controller = new AbortController();
    const outcome = await registerOverHttps({
      registrationId: 'contoso-toaster-009',
      groupKey: GROUP_KEY,
      onStatus: (s) => {
        if (s.phase === 'assigning') controller.abort();
      },
      signal: controller.signal,
    });
    expect(outcome).toMatchObject({ status: 'error', errorName: 'AbortError' });
  });

  it('gives up after timeoutMs', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'contoso-toaster-010',
      groupKey: GROUP_KEY,
      timeoutMs: 200,
    });
    expect(outcome).toMatchObject({ status: 'error', errorName: 'TimeoutError' });
    expect(outcome.errorMessage).toContain('0.2 s');
  });
});

describe('registerDevice connection failures', () => {
  it.each(['http', 'mqtt', 'amqp'] as const)('reports an untrusted server certificate over %s', async (transport) => {
    const outcome = await registerDevice({
      // an HTTPS server is enough here: the TLS handshake fails before any MQTT is spoken
      provisioningHost: dps.host,
      idScope: ID_SCOPE,
      registrationId: 'contoso-toaster-011',
      groupKey: GROUP_KEY,
      transport,
      ca: pki.otherCaPem,
    });
    expect(outcome.status).toBe('error');
    expect(outcome.errorName).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it.each(['http', 'mqtt', 'amqp', 'amqp-ws', 'mqtt-ws'] as const)(
    'reports a refused connection over %s',
    async (transport) => {
      const port = await closedPort();
      const outcome = await registerDevice({
        provisioningHost: `127.0.0.1:${port}`,
        idScope: ID_SCOPE,
        registrationId: 'contoso-toaster-012',
        groupKey: GROUP_KEY,
        transport,
      });
      expect(outcome).toMatchObject({ status: 'error', errorName: 'ECONNREFUSED' });
    },
  );
});

describe('registerDevice at a port of another protocol', () => {
  it('over AMQP at an HTTPS port: ProtocolError (what the port answered), and rhea prints nothing', async () => {
    // rhea prints its ProtocolError with the bytes it read, in hex, when nobody listens for it.
    const printed = [vi.spyOn(console, 'error'), vi.spyOn(console, 'warn'), vi.spyOn(console, 'log')];
    try {
      const outcome = await registerDevice({
        provisioningHost: dps.host,
        idScope: ID_SCOPE,
        registrationId: 'contoso-toaster-013',
        groupKey: GROUP_KEY,
        transport: 'amqp',
        ca: pki.caPem,
      });
      expect(outcome).toMatchObject({ status: 'error', errorName: 'ProtocolError' });
      expect(outcome.errorMessage).toContain('Invalid protocol header for AMQP HTTP');
      for (const spy of printed) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of printed) spy.mockRestore();
    }
  });
});

describe('registerDevice retries (as a real device retries a transient failure)', () => {
  it('registers again after 503 answers, with back-off, and says how many attempts it took', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'flaky-1',
      groupKey: GROUP_KEY,
      retries: 3,
      retryBackoffMs: 10,
    });
    expect(outcome).toMatchObject({ status: 'assigned', assignedHub: HUB, attempts: 3 });
    expect(dps.registrations.filter((r) => r.registrationId === 'flaky-1')).toHaveLength(3);
  });

  it('gives up after the last retry with the last failure', async () => {
    const outcome = await registerOverHttps({
      registrationId: 'flaky-2',
      groupKey: GROUP_KEY,
      retries: 1,
      retryBackoffMs: 10,
    });
    expect(outcome).toMatchObject({ status: 'error', errorCode: 503000, attempts: 2 });
  });

  it('without retries reports the first transient failure, as the SDK does', async () => {
    const outcome = await registerOverHttps({ registrationId: 'flaky-3', groupKey: GROUP_KEY });
    expect(outcome).toMatchObject({ status: 'error', errorCode: 503000 });
    expect(outcome.attempts).toBeUndefined();
  });

  it('does not retry final answers or refusals', async () => {
    const failed = await registerOverHttps({
      registrationId: 'contoso-heatpump-089',
      groupKey: GROUP_KEY,
      retries: 3,
      retryBackoffMs: 10,
    });
    expect(failed).toMatchObject({ status: 'failed', errorCode: 400207 });
    const unauthorized = await registerOverHttps({
      registrationId: 'contoso-toaster-013',
      deviceKey: 'NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=',
      retries: 3,
      retryBackoffMs: 10,
    });
    expect(unauthorized).toMatchObject({ status: 'error', errorName: 'UnauthorizedError' });
    expect(failed.attempts ?? 1).toBe(1);
    expect(unauthorized.attempts ?? 1).toBe(1);
  });

  it.each(['http', 'mqtt'] as const)('retries a refused connection over %s', async (transport) => {
    const port = await closedPort();
    const outcome = await registerDevice({
      provisioningHost: `127.0.0.1:${port}`,
      idScope: ID_SCOPE,
      registrationId: 'contoso-toaster-014',
      groupKey: GROUP_KEY,
      transport,
      retries: 2,
      retryBackoffMs: 10,
    });
    expect(outcome).toMatchObject({ status: 'error', errorName: 'ECONNREFUSED', attempts: 3 });
  });

  it('stops retrying when cancelled during a back-off', async () => {
    const port = await closedPort();
    const controller = new AbortController();
    const pending = registerDevice({
      provisioningHost: `127.0.0.1:${port}`,
      idScope: ID_SCOPE,
      registrationId: 'contoso-toaster-015',
      groupKey: GROUP_KEY,
      transport: 'http',
      retries: 5,
      // Long enough that the test, not the back-off, decides when this ends.
      retryBackoffMs: 600_000,
      signal: controller.signal,
    });
    setImmediate(() => controller.abort());
    expect(await pending).toMatchObject({ status: 'error', errorName: 'AbortError' });
  });

  it('backs off exponentially with jitter between half and all of the ceiling, capped at 30 s', () => {
    expect([1, 2, 3, 4].map((n) => retryBackoff(n, 1000, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((n) => retryBackoff(n, 1000, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryBackoff(20, 1000, () => 1)).toBe(30_000);
  });
});

describe('registerDevice option checks', () => {
  it.each([
    [{ deviceKey: undefined, groupKey: undefined }, 'deviceKey'],
    [{ deviceKey: 'NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=', groupKey: GROUP_KEY }, 'deviceKey'],
    [{ groupKey: 'not base64!' }, 'groupKey'],
    [{ groupKey: GROUP_KEY, registrationId: 'bad id' }, 'registrationId'],
    [{ groupKey: GROUP_KEY, idScope: '0ne/x' }, 'idScope'],
    [{ groupKey: GROUP_KEY, provisioningHost: 'https://x' }, 'provisioningHost'],
    [{ groupKey: GROUP_KEY, payload: [1] as unknown as Record<string, unknown> }, 'payload'],
    [{ groupKey: GROUP_KEY, ca: 'not a pem' }, 'ca'],
    [{ groupKey: GROUP_KEY, retries: -1 }, 'retries'],
    [{ groupKey: GROUP_KEY, retries: 1.5 }, 'retries'],
    [{ groupKey: GROUP_KEY, retryBackoffMs: Number.NaN }, 'retryBackoffMs'],
  ])('rejects %j naming %s before connecting', async (override, field) => {
    await expect(
      registerDevice({ idScope: ID_SCOPE, registrationId: 'contoso-toaster-007', ...override }),
    ).rejects.toMatchObject({ name: 'InvalidOptionError', field });
  });
});
