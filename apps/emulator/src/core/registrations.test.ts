import {
  createRegistrationSasToken,
  type DeviceRegistrationResult,
  deriveDeviceKey,
  generateSymmetricKey,
  parseAllocationRequestJson,
} from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { groupEnrollment, individualEnrollment } from '../testing/enrollments.js';
import type { WebhookCallOutcome } from './allocation/custom.js';
import type { RegistrationEvent } from './events.js';
import { type EmulatedEnrollment, enrollmentSet, type ServiceModel } from './model.js';
import { type AttestedDevice, RegistrationService } from './registrations.js';
import { MemoryRegistrationStore } from './store.js';

const SCOPE = '0ne00000A0A';
const keys = () => ({ primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() });
const customGroup = groupEnrollment('custom', keys(), {
  allocationPolicy: 'custom',
  customAllocationDefinition: { webhookUrl: 'http://hook.test/api?code=1', apiVersion: '2021-10-01' },
  initialTwin: { tags: { from: 'enrollment' } },
});
const hashedGroup = groupEnrollment('hashed', keys(), { allocationPolicy: 'hashed' });
const disabledSolo = individualEnrollment('disabled-solo', keys(), { provisioningStatus: 'disabled' });
const namedSolo = individualEnrollment('named-solo', keys(), {
  deviceId: 'hub-device-7',
  allocationPolicy: 'static',
  iotHubs: ['b.net'],
});
const staticNoHub = groupEnrollment('static-none', keys(), { allocationPolicy: 'static' });

function setup(
  webhook: (body: string) => WebhookCallOutcome | Promise<WebhookCallOutcome>,
  store = new MemoryRegistrationStore(),
  enrollments: EmulatedEnrollment[] = [customGroup, hashedGroup, disabledSolo, namedSolo, staticNoHub],
) {
  const model: ServiceModel = {
    idScope: SCOPE,
    defaultAllocationPolicy: 'hashed',
    linkedHubs: [
      { hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true },
      { hostName: 'b.net', allocationWeight: 1, applyAllocationPolicy: true },
    ],
    enrollments: enrollmentSet(enrollments),
  };
  const events: RegistrationEvent[] = [];
  const bodies: string[] = [];
  const service = new RegistrationService({
    model,
    store,
    callWebhook: async (_url, body) => {
      bodies.push(body);
      return { ...(await webhook(body)), latencyMs: 3 };
    },
    webhookRetry: { count: 1, initialIntervalMs: 0, incrementMs: 0 },
    onRegistration: (event) => events.push(event),
  });
  return { service, store, events, bodies };
}

const device = (enrollment: EmulatedEnrollment, registrationId: string): AttestedDevice => ({
  ok: true,
  registrationId,
  enrollment,
  keyUsed: 'primary',
});

async function finish(service: RegistrationService, registrationId: string, operationId: string) {
  await service.whenIdle();
  const view = service.operation(registrationId, operationId);
  if (view.state !== 'done') throw new Error(`operation is ${view.state}`);
  return view.body.registrationState as DeviceRegistrationResult;
}

const hubFromPayload = (body: string): WebhookCallOutcome => {
  const request = parseAllocationRequestJson(body);
  if (!request.ok) return { kind: 'response', status: 400, body: '' };
  const context = request.value.deviceRuntimeContext;
  return {
    kind: 'response',
    status: 200,
    body: JSON.stringify({
      iotHubHostName: context.payload?.hub ?? 'a.net',
      payload: { current: context.currentIotHubHostName ?? null },
    }),
  };
};

describe('RegistrationService', () => {
  it('is assigning until allocation ends, then answers with the full registration state', async () => {
    let release: (outcome: WebhookCallOutcome) => void = () => {};
    const { service, events } = setup(() => new Promise((resolve) => (release = resolve)));
    const started = service.register(device(customGroup, 'dev-1'), { hub: 'b.net' }, 'mqtt');
    expect(started).toEqual({ operationId: expect.stringMatching(/^4\./), status: 'assigning' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(service.operation('dev-1', started.operationId)).toEqual({
      state: 'assigning',
      body: { ...started, registrationState: { registrationId: 'dev-1', status: 'assigning' } },
    });

    release({ kind: 'response', status: 200, body: JSON.stringify({ iotHubHostName: 'b.net', payload: { p: 1 } }) });
    const result = await finish(service, 'DEV-1', started.operationId);
    // The attestation block first, as in the real capture (`{"x509":{…},"registrationId":…}`).
    expect(Object.keys(result)).toEqual([
      'symmetricKey',
      'registrationId',
      'createdDateTimeUtc',
      'assignedHub',
      'deviceId',
      'status',
      'substatus',
      'lastUpdatedDateTimeUtc',
      'etag',
      'payload',
    ]);
    expect(result).toMatchObject({
      registrationId: 'dev-1',
      assignedHub: 'b.net',
      deviceId: 'dev-1',
      substatus: 'initialAssignment',
      payload: { p: 1 },
    });
    expect(service.lookup('dev-1')).toEqual(result);
    expect(events).toEqual([
      expect.objectContaining({
        registrationId: 'dev-1',
        operationId: started.operationId,
        transport: 'mqtt',
        policy: 'custom',
        enrollment: { kind: 'group', id: 'custom' },
        webhook: { url: 'http://hook.test/api?****', status: 200, latencyMs: 3, attempts: 1 },
        // The webhook sent no twin: the enrollment's is written on initial assignment.
        outcome: expect.objectContaining({ status: 'assigned', initialTwin: { tags: { from: 'enrollment' } } }),
      }),
    ]);
  });

  it('hides an operation from any other registration id', async () => {
    const { service } = setup(hubFromPayload);
    const { operationId } = service.register(device(hashedGroup, 'dev-2'), undefined, 'https');
    await service.whenIdle();
    expect(service.operation('dev-3', operationId)).toEqual({ state: 'not-found' });
    expect(service.operation('dev-2', 'unknown')).toEqual({ state: 'not-found' });
    expect(service.operation('dev-2', operationId).state).toBe('done');
  });

  it('runs re-registrations of one device in order, each seeing the one before', async () => {
    const { service, bodies } = setup(hubFromPayload);
    const a = service.register(device(customGroup, 'dev-4'), { hub: 'a.net' }, 'mqtt');
    const b = service.register(device(customGroup, 'dev-4'), { hub: 'b.net' }, 'mqtt');
    const first = await finish(service, 'dev-4', a.operationId);
    const second = await finish(service, 'dev-4', b.operationId);
    expect(first).toMatchObject({ assignedHub: 'a.net', substatus: 'initialAssignment', payload: { current: null } });
    expect(second).toMatchObject({
      assignedHub: 'b.net',
      substatus: 'deviceDataMigrated',
      payload: { current: 'a.net' },
    });
    expect(second.createdDateTimeUtc).toBe(first.createdDateTimeUtc);
    expect(JSON.parse(bodies[1] as string).deviceRuntimeContext).toMatchObject({
      currentIotHubHostName: 'a.net',
      currentDeviceId: 'dev-4',
    });
  });

  it('records failures without losing the current assignment', async () => {
    let fail = false;
    const { service, store } = setup((body) =>
      fail ? { kind: 'response', status: 400, body: '' } : hubFromPayload(body),
    );
    const ok = service.register(device(customGroup, 'dev-5'), { hub: 'b.net' }, 'mqtt');
    await finish(service, 'dev-5', ok.operationId);
    fail = true;
    const bad = service.register(device(customGroup, 'dev-5'), undefined, 'mqtt');
    const failed = await finish(service, 'dev-5', bad.operationId);
    expect(Object.keys(failed)).toEqual([
      'registrationId',
      'createdDateTimeUtc',
      'status',
      'errorCode',
      'errorMessage',
      'lastUpdatedDateTimeUtc',
      'etag',
    ]);
    expect(failed).toMatchObject({
      status: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 400',
    });
    expect(store.get('dev-5')?.assignment).toEqual({ hub: 'b.net', deviceId: 'dev-5', substatus: 'initialAssignment' });
  });

  it('answers disabled for a disabled enrollment, uses an individual deviceId, and fails a static enrollment without a hub', async () => {
    const { service } = setup(hubFromPayload);
    const disabled = service.register(device(disabledSolo, 'disabled-solo'), undefined, 'mqtt');
    expect(await finish(service, 'disabled-solo', disabled.operationId)).toMatchObject({ status: 'disabled' });
    expect(service.operation('disabled-solo', disabled.operationId)).toMatchObject({ body: { status: 'disabled' } });

    const named = service.register(device(namedSolo, 'named-solo'), undefined, 'https');
    const result = await finish(service, 'named-solo', named.operationId);
    expect(result).toMatchObject({ assignedHub: 'b.net', deviceId: 'hub-device-7' });
    expect(result.symmetricKey).toBeUndefined();

    const none = service.register(device(staticNoHub, 'static-1'), undefined, 'https');
    expect(await finish(service, 'static-1', none.operationId)).toMatchObject({
      status: 'failed',
      errorCode: 400210,
      errorMessage: 'Allocation failed: no IoT hub can be assigned (the static enrollment names no IoT hub).',
    });
  });

  it('reports attestation failures as unauthorized events', () => {
    const { service, events } = setup(hubFromPayload);
    const token = createRegistrationSasToken({
      idScope: SCOPE,
      registrationId: 'x-1',
      key: deriveDeviceKey(generateSymmetricKey(), 'x-1'),
    });
    const result = service.attest({ requestedIdScope: SCOPE, registrationId: 'x-1', token });
    if (result.ok) throw new Error('expected a failure');
    service.reportUnauthorized(result, 'https');
    expect(events[0]).toMatchObject({
      registrationId: 'x-1',
      transport: 'https',
      outcome: {
        status: 'unauthorized',
        errorCode: 401002,
        errorMessage: expect.stringMatching(/^no-matching-enrollment: /),
      },
    });
  });

  it('ends an allocation that throws as failed with an internal error', async () => {
    const { service } = setup(() => {
      throw new Error('boom');
    });
    const op = service.register(device(customGroup, 'dev-9'), undefined, 'mqtt');
    expect(await finish(service, 'dev-9', op.operationId)).toMatchObject({
      status: 'failed',
      errorCode: 500001,
      errorMessage: 'Internal error: boom',
    });
  });
});

describe('RegistrationService across a crash (issue 8 item 1)', () => {
  const never = () => new Promise<WebhookCallOutcome>(() => {});
  const assign = (hub: string): WebhookCallOutcome => ({
    kind: 'response',
    status: 200,
    body: JSON.stringify({ iotHubHostName: hub, payload: { by: 'second process' } }),
  });

  it('answers a poll from the store: a new process sees operations the old one finished', async () => {
    const first = setup(() => assign('a.net'));
    const op = first.service.register(device(customGroup, 'dev-done'), undefined, 'mqtt');
    const result = await finish(first.service, 'dev-done', op.operationId);
    // The "old process" is abandoned, not closed: nothing of it is used again but the store.
    const second = setup(never, first.store);
    expect(second.service.resumeUnfinished()).toBe(0);
    expect(second.service.operation('DEV-DONE', op.operationId)).toEqual({
      state: 'done',
      body: { operationId: op.operationId, status: 'assigned', registrationState: result },
    });
    expect(second.service.operation('someone-else', op.operationId)).toEqual({ state: 'not-found' });
  });

  it('runs again, in order, the allocations a crashed process left unfinished, with the same payload', async () => {
    const first = setup(never);
    const a = first.service.register(device(customGroup, 'dev-x'), { hub: 'a.net' }, 'https');
    const b = first.service.register(device(customGroup, 'dev-x'), { hub: 'b.net' }, 'https');
    const c = first.service.register(device(customGroup, 'dev-y'), undefined, 'mqtt');
    await new Promise((resolve) => setImmediate(resolve));
    expect(first.store.unfinishedOperations().map((op) => op.operationId)).toEqual([
      a.operationId,
      b.operationId,
      c.operationId,
    ]);

    const second = setup(hubFromPayload, first.store);
    expect(second.service.operation('dev-x', a.operationId).state).toBe('assigning');
    expect(second.service.resumeUnfinished()).toBe(3);
    expect((await finish(second.service, 'dev-x', a.operationId)).assignedHub).toBe('a.net');
    // The second ran after the first, and saw its assignment, as in one process.
    const later = await finish(second.service, 'dev-x', b.operationId);
    expect(later).toMatchObject({ assignedHub: 'b.net', payload: { current: 'a.net' } });
    expect((await finish(second.service, 'dev-y', c.operationId)).status).toBe('assigned');
    expect(second.store.get('dev-x')?.result).toEqual(later);
    expect(second.store.unfinishedOperations()).toEqual([]);
    expect(new Map(second.events.map((e) => [e.operationId, e.transport]))).toEqual(
      new Map([
        [a.operationId, 'https'],
        [b.operationId, 'https'],
        [c.operationId, 'mqtt'],
      ]),
    );
  });

  it('a resumed allocation sends the X.509 device certificate details to the webhook, as the first run would', async () => {
    const first = setup(never);
    const x509 = { clientCertificate: 'MIIB', certificateChain: ['MIIC'] };
    const op = first.service.register({ ...device(customGroup, 'dev-x509'), x509 }, undefined, 'mqtt');
    await new Promise((resolve) => setImmediate(resolve));
    expect(first.store.unfinishedOperations()[0]?.x509).toEqual(x509);

    const second = setup(hubFromPayload, first.store);
    expect(second.service.resumeUnfinished()).toBe(1);
    expect((await finish(second.service, 'dev-x509', op.operationId)).status).toBe('assigned');
    const sent = parseAllocationRequestJson(second.bodies[0] ?? '');
    if (!sent.ok) throw sent.error;
    expect(sent.value.deviceRuntimeContext.x509).toEqual(x509);
    expect(sent.value.deviceRuntimeContext).not.toHaveProperty('symmetricKey');
  });

  it('fails an unfinished operation whose enrollment is gone after the restart', async () => {
    const first = setup(never);
    const op = first.service.register(device(customGroup, 'dev-gone'), undefined, 'mqtt');
    const second = setup(never, first.store, [hashedGroup]);
    expect(second.service.resumeUnfinished()).toBe(1);
    const view = second.service.operation('dev-gone', op.operationId);
    expect(view).toMatchObject({
      state: 'done',
      body: {
        status: 'failed',
        registrationState: { errorCode: 404001, errorMessage: 'The enrollment group "custom" no longer exists.' },
      },
    });
  });

  it('forgets finished operations after the retention time, from the store', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const store = new MemoryRegistrationStore();
    const model: ServiceModel = {
      idScope: SCOPE,
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [{ hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true }],
      enrollments: enrollmentSet([hashedGroup]),
    };
    const service = new RegistrationService({
      model,
      store,
      callWebhook: () => new Promise(() => {}),
      webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
      now: () => now,
      operationRetentionMs: 60_000,
    });
    const op = service.register(device(hashedGroup, 'dev-old'), undefined, 'mqtt');
    await service.whenIdle();
    now = new Date(now.getTime() + 120_000);
    service.register(device(hashedGroup, 'dev-new'), undefined, 'mqtt');
    await service.whenIdle();
    expect(service.operation('dev-old', op.operationId)).toEqual({ state: 'not-found' });
    expect(store.getOperation(op.operationId)).toBeUndefined();
  });
});
