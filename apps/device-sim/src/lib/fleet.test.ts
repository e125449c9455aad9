import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpsDps, startHttpsDps } from '../testing/https-dps.js';
import { createTestPki, type TestPki } from '../testing/tls.js';
import { type FleetProgress, runFleet } from './fleet.js';
import type { RegistrationOutcome } from './types.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const BASE = { idScope: '0ne00000A0A', groupKey: GROUP_KEY, registrationIdTemplates: 'dev-{n}' };

describe('runFleet option checks', () => {
  it.each([
    [{ count: 0 }, 'count'],
    [{ count: 1.5 }, 'count'],
    [{ count: 3, concurrency: 0 }, 'concurrency'],
    [{ count: 3, start: -1 }, 'start'],
    [{ count: 3, registrationIdTemplates: 'dev' }, 'registrationIdTemplates'],
    [{ count: 3, registrationIdTemplates: [] }, 'registrationIdTemplates'],
    [{ count: 3, registrationIdTemplates: 'dev {n}' }, 'registrationIdTemplates'],
    [{ count: 3, groupKey: 'xyz' }, 'groupKey'],
    [{ count: 3, payload: [] }, 'payload'],
    [{ count: 3, payload: [{ a: 1 }, ['not', 'an', 'object']] as unknown as Record<string, unknown>[] }, 'payload'],
  ])('rejects %j naming %s', async (override, field) => {
    await expect(runFleet({ ...BASE, ...override })).rejects.toMatchObject({
      name: 'InvalidOptionError',
      field,
    });
  });
});

describe('runFleet through the real SDK (HTTPS)', () => {
  let pki: TestPki;
  let dps: HttpsDps;

  beforeAll(async () => {
    pki = createTestPki();
    dps = await startHttpsDps({
      pki,
      idScope: '0ne00000A0A',
      groupKey: GROUP_KEY,
      decide: (id) => ({ kind: 'assigned', hub: id.endsWith('1') ? 'hub-a.example' : 'hub-b.example' }),
    });
  });

  afterAll(async () => {
    await dps?.close();
  });

  it('derives each key, sends each its payload, reports every outcome and progress', async () => {
    const outcomes: Array<[number, RegistrationOutcome]> = [];
    const progress: FleetProgress[] = [];
    const summary = await runFleet({
      ...BASE,
      provisioningHost: dps.host,
      ca: pki.caPem,
      transport: 'http',
      count: 4,
      concurrency: 2,
      registrationIdTemplates: ['kettle-{n}', 'fridge-{n}'],
      payload: (registrationId, index) => (index === 3 ? undefined : { registrationId, index }),
      onOutcome: (o, i) => outcomes.push([i, o]),
      onProgress: (p) => progress.push(p),
    });
    expect(summary).toMatchObject({ requested: 4, completed: 4, concurrency: 2, byStatus: { assigned: 4 } });
    expect(summary.hubs).toEqual([
      { hub: 'hub-a.example', count: 2 },
      { hub: 'hub-b.example', count: 2 },
    ]);
    expect(outcomes.map(([i, o]) => [i, o.registrationId]).sort()).toEqual([
      [0, 'kettle-1'],
      [1, 'fridge-1'],
      [2, 'kettle-2'],
      [3, 'fridge-2'],
    ]);
    const payloads = Object.fromEntries(dps.registrations.map((r) => [r.registrationId, r.payload]));
    expect(payloads['kettle-2']).toEqual({ registrationId: 'kettle-2', index: 2 });
    expect(payloads['fridge-2']).toBeUndefined();
    expect(Math.max(...progress.map((p) => p.inFlight))).toBeLessThanOrEqual(2);
    expect(progress.at(-1)).toMatchObject({ requested: 4, launched: 4, finished: 4, inFlight: 0 });
  });

  it('spreads a fleet over 2 worker threads: every device exactly one outcome, its own, none crossed', async () => {
    const outcomes: Array<[number, RegistrationOutcome]> = [];
    const progress: FleetProgress[] = [];
    const before = dps.registrations.length;
    const summary = await runFleet({
      ...BASE,
      provisioningHost: dps.host,
      ca: pki.caPem,
      transport: 'http',
      count: 11,
      concurrency: 4,
      workers: 2,
      registrationIdTemplates: ['kettle-w{n}', 'fridge-w{n}'],
      start: 10,
      payload: { firmware: '1.2.3' },
      onOutcome: (o, i) => outcomes.push([i, o]),
      onProgress: (p) => progress.push(p),
    });
    expect(summary).toMatchObject({
      requested: 11,
      launched: 11,
      completed: 11,
      concurrency: 4,
      stoppedEarly: false,
      byStatus: { assigned: 11 },
    });
    // Index i is template i % 2 numbered from 10 + floor(i / 2); the service answered each under its own id.
    const expected = Array.from(
      { length: 11 },
      (_, i) => `${i % 2 === 0 ? 'kettle' : 'fridge'}-w${10 + Math.floor(i / 2)}`,
    );
    expect(outcomes.map(([i]) => i).sort((a, b) => a - b)).toEqual(expected.map((_, i) => i));
    for (const [i, outcome] of outcomes) {
      expect(outcome.registrationId).toBe(expected[i]);
      expect(outcome.deviceId).toBe(expected[i]);
      expect(outcome.assignedHub).toBe(expected[i]!.endsWith('1') ? 'hub-a.example' : 'hub-b.example');
    }
    const received = dps.registrations.slice(before);
    expect(received.map((r) => r.registrationId).sort()).toEqual([...expected].sort());
    expect(received.every((r) => JSON.stringify(r.payload) === '{"firmware":"1.2.3"}')).toBe(true);
    expect(progress.at(-1)).toMatchObject({ requested: 11, launched: 11, finished: 11, inFlight: 0 });
  });

  it('payloads take turns over the devices, over worker threads as in one', async () => {
    const payloads = [{ site: 'north' }, { site: 'south' }, { site: 'west', firmware: '2.0' }];
    for (const workers of [1, 2]) {
      const before = dps.registrations.length;
      const summary = await runFleet({
        ...BASE,
        provisioningHost: dps.host,
        ca: pki.caPem,
        transport: 'http',
        count: 7,
        concurrency: 4,
        workers,
        registrationIdTemplates: [`turns-w${workers}-{n}`],
        payload: payloads,
      });
      expect(summary).toMatchObject({ completed: 7, byStatus: { assigned: 7 } });
      const received = Object.fromEntries(
        dps.registrations.slice(before).map((r) => [r.registrationId, r.payload] as const),
      );
      // Device index i is turns-w{workers}-{i + 1} and sends payloads[i % 3].
      expect(received).toEqual(
        Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`turns-w${workers}-${i + 1}`, payloads[i % 3]])),
      );
    }
  });

  it('rejects, over workers as in one thread, with an option only a registration checks', async () => {
    for (const workers of [1, 2]) {
      await expect(
        runFleet({ ...BASE, provisioningHost: 'not a host!', ca: pki.caPem, transport: 'http', count: 4, workers }),
      ).rejects.toMatchObject({ name: 'InvalidOptionError', field: 'provisioningHost' });
    }
  });

  it('rejects a bad option given to workers before any device starts', async () => {
    await expect(
      runFleet({ ...BASE, provisioningHost: dps.host, ca: pki.caPem, count: 4, workers: 0 }),
    ).rejects.toMatchObject({ name: 'InvalidOptionError', field: 'workers' });
  });

  it('returns an empty, stopped summary when the signal is already aborted, over workers too', async () => {
    const controller = new AbortController();
    controller.abort();
    const summary = await runFleet({
      ...BASE,
      provisioningHost: dps.host,
      ca: pki.caPem,
      count: 5,
      workers: 2,
      signal: controller.signal,
    });
    expect(summary).toMatchObject({ launched: 0, completed: 0, notStarted: 5, stoppedEarly: true });
  });

  it('returns an empty, stopped summary when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const summary = await runFleet({
      ...BASE,
      provisioningHost: dps.host,
      ca: pki.caPem,
      count: 5,
      signal: controller.signal,
    });
    expect(summary).toMatchObject({ launched: 0, completed: 0, notStarted: 5, stoppedEarly: true });
  });
});
