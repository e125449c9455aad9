import { createRegistrationSasToken, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { createTestCsr } from '../testing/csr.js';
import { groupEnrollment } from '../testing/enrollments.js';
import { carriesCertificateIssuance, DeviceApi } from './device-api.js';
import { enrollmentSet } from './model.js';
import { RegistrationService } from './registrations.js';
import { MemoryRegistrationStore } from './store.js';

const SCOPE = '0ne00000A0A';
const group = groupEnrollment('g', { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() });
const service = new RegistrationService({
  model: {
    idScope: SCOPE,
    defaultAllocationPolicy: 'hashed',
    linkedHubs: [{ hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true }],
    enrollments: enrollmentSet([group]),
  },
  store: new MemoryRegistrationStore(),
  callWebhook: async () => ({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 }),
  webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
});
const api = new DeviceApi(service, { retryAfterSeconds: 3 });
const attested = (id: string) =>
  service.attest({
    requestedIdScope: SCOPE,
    registrationId: id,
    token: createRegistrationSasToken({
      idScope: SCOPE,
      registrationId: id,
      key: deriveDeviceKey(group.keys.primaryKey, id),
    }),
  });

describe('DeviceApi', () => {
  it('answers register with 202 assigning and retry-after, then the poll with 200', async () => {
    const response = api.register(
      attested('dev-1'),
      JSON.stringify({ registrationId: 'dev-1', payload: { a: 1 } }),
      'mqtt',
    );
    expect(response).toEqual({
      status: 202,
      body: { operationId: expect.any(String), status: 'assigning' },
      retryAfterSeconds: 3,
    });
    await service.whenIdle();
    const poll = await api.operationStatus(
      attested('dev-1'),
      (response.body as { operationId: string }).operationId,
      'mqtt',
    );
    expect(poll).toMatchObject({
      status: 200,
      body: { status: 'assigned', registrationState: { assignedHub: 'a.net' } },
    });
    expect(poll.retryAfterSeconds).toBeUndefined();
    expect(api.statusLookup(attested('dev-1'))).toMatchObject({
      status: 200,
      body: { registrationId: 'dev-1', status: 'assigned' },
    });
  });

  it('answers with DPS error bodies: 401, 400 for bad JSON and mismatched ids, 404 for unknown operations and records', async () => {
    const failed = service.attest({
      requestedIdScope: SCOPE,
      registrationId: 'dev-2',
      token: 'SharedAccessSignature sr=x&sig=y&se=1',
    });
    expect(api.register(failed, '{}', 'https')).toMatchObject({
      status: 401,
      body: {
        errorCode: 401002,
        message: 'Unauthorized',
        trackingId: expect.any(String),
        timestampUtc: expect.any(String),
      },
    });
    expect((await api.operationStatus(failed, 'x', 'https')).status).toBe(401);
    expect((await api.operationStatus(failed, 'x', 'mqtt')).body).toMatchObject({ errorCode: 401000 });
    expect(api.register(failed, '{}', 'mqtt').body).toMatchObject({ errorCode: 401000, message: 'Unauthorized' });
    expect(api.statusLookup(failed).status).toBe(401);

    const bad = api.register(attested('dev-2'), '{"registrationId":', 'mqtt');
    expect(bad).toMatchObject({ status: 400, body: { errorCode: 400001 } });
    expect((bad.body as { message: string }).message).toMatch(/not valid JSON/);
    expect(
      api.register(attested('dev-2'), JSON.stringify({ registrationId: 'dev-2', payload: 'text' }), 'mqtt'),
    ).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: expect.stringContaining('payload') },
    });
    expect(api.register(attested('dev-2'), JSON.stringify({ registrationId: 'dev-3' }), 'mqtt')).toMatchObject({
      status: 400,
      body: { errorCode: 400002 },
    });
    // Registration ids are case-insensitive.
    expect(api.register(attested('dev-2'), JSON.stringify({ registrationId: 'DEV-2' }), 'mqtt').status).toBe(202);
    const huge = JSON.stringify({ registrationId: 'dev-2', payload: { blob: 'x'.repeat(100 * 1024) } });
    expect(api.register(attested('dev-2'), huge, 'mqtt')).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: expect.stringContaining('DPS accepts at most 98304') },
    });
    const bytes = (text: string) => new TextEncoder().encode(text);
    expect(api.register(attested('dev-2'), bytes(JSON.stringify({ registrationId: 'dev-2' })), 'mqtt').status).toBe(
      202,
    );
    const notUtf8 = Uint8Array.from([
      ...bytes('{"registrationId":"dev-2","payload":{"a":"'),
      0xe2,
      0x82,
      ...bytes('"}}'),
    ]);
    expect(api.register(attested('dev-2'), notUtf8, 'mqtt')).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: 'The request body is not valid UTF-8.' },
    });
    expect(await api.operationStatus(attested('dev-2'), '4.0.0', 'mqtt')).toMatchObject({
      status: 404,
      body: { errorCode: 404006 },
    });
    expect(api.statusLookup(attested('never'))).toMatchObject({ status: 404, body: { errorCode: 404001 } });
  });

  it('refuses csr (certificate issuance) without an issuing CA, and under an api-version before 2025-07-01-preview', async () => {
    const { csr } = await createTestCsr('dev-csr');
    const body = JSON.stringify({ csr });
    expect(api.register(attested('dev-csr'), body, 'https', '2025-07-01-preview')).toMatchObject({
      status: 400,
      body: {
        errorCode: 400001,
        message:
          'csr: certificate issuance is not configured on this emulator (start it with --issuing-ca and --issuing-ca-key).',
      },
    });
    expect(api.register(attested('dev-csr'), body, 'https', '2021-10-01')).toMatchObject({
      status: 400,
      body: { message: expect.stringContaining('needs api-version 2025-07-01-preview or later, not 2021-10-01') },
    });
    expect(carriesCertificateIssuance('2026-11-01')).toBe(true);
    expect(carriesCertificateIssuance('2025-07-01-preview')).toBe(true);
    expect(carriesCertificateIssuance('2021-06-01')).toBe(false);
    expect(service.operation('dev-csr', 'none')).toMatchObject({ state: 'not-found' });
  });

  it('accepts a register body without registrationId (the newest C SDK sends none)', async () => {
    const response = api.register(attested('dev-3'), JSON.stringify({ payload: { a: 1 } }), 'https');
    expect(response).toMatchObject({ status: 202, body: { status: 'assigning' } });
    expect(api.register(attested('dev-3'), '{}', 'mqtt').status).toBe(202);
    await service.whenIdle();
    expect(api.statusLookup(attested('dev-3'))).toMatchObject({
      body: { registrationId: 'dev-3', status: 'assigned' },
    });
  });

  it('refuses a retry-after an SDK cannot parse', () => {
    for (const bad of [0.05, 0.2, -1, 301, Number.NaN]) {
      expect(() => new DeviceApi(service, { retryAfterSeconds: bad })).toThrow(/whole number of seconds from 0 to 300/);
    }
    expect(() => new DeviceApi(service, { retryAfterSeconds: 0 })).not.toThrow();
  });
});

describe('DeviceApi while a webhook runs', () => {
  const webhookGroup = groupEnrollment(
    'w',
    { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
    {
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: 'http://127.0.0.1:9/api/allocate', apiVersion: '2021-10-01' },
    },
  );
  const setup = (store = new MemoryRegistrationStore()) => {
    const answers: ((outcome: { kind: 'timeout'; timeoutMs: number; latencyMs: number }) => void)[] = [];
    const slowService = new RegistrationService({
      model: {
        idScope: SCOPE,
        defaultAllocationPolicy: 'hashed',
        linkedHubs: [{ hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true }],
        enrollments: enrollmentSet([webhookGroup]),
      },
      store,
      // The webhook answers when the test says so.
      callWebhook: () => new Promise((resolve) => answers.push(resolve)),
      webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
    });
    const token = (id: string) =>
      slowService.attest({
        requestedIdScope: SCOPE,
        registrationId: id,
        token: createRegistrationSasToken({
          idScope: SCOPE,
          registrationId: id,
          key: deriveDeviceKey(webhookGroup.keys.primaryKey, id),
        }),
      });
    const finishWebhook = async () => {
      while (answers.length === 0) await new Promise((resolve) => setImmediate(resolve));
      answers.shift()?.({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 });
    };
    return { slowService, token, finishWebhook };
  };

  it('polls while assigning carry registrationState {registrationId, status: assigning}, as real DPS sends', async () => {
    const { slowService, token, finishWebhook } = setup();
    const slowApi = new DeviceApi(slowService, { retryAfterSeconds: 3 });
    const accepted = slowApi.register(token('Dev-Case'), '{"registrationId":"Dev-Case"}', 'mqtt');
    const { operationId } = accepted.body as { operationId: string };
    expect(await slowApi.operationStatus(token('Dev-Case'), operationId, 'mqtt')).toEqual({
      status: 202,
      body: {
        operationId,
        status: 'assigning',
        registrationState: { registrationId: 'Dev-Case', status: 'assigning' },
      },
      retryAfterSeconds: 3,
    });
    await finishWebhook();
    await slowService.whenIdle();
    expect(await slowApi.operationStatus(token('Dev-Case'), operationId, 'mqtt')).toMatchObject({ status: 200 });
  });

  it('with retry-after 0, holds a poll until the allocation is done instead of answering assigning', async () => {
    const { slowService, token, finishWebhook } = setup();
    const fastApi = new DeviceApi(slowService, { retryAfterSeconds: 0 });
    const accepted = fastApi.register(token('dev-f'), '{}', 'https');
    expect(accepted.retryAfterSeconds).toBe(0);
    const { operationId } = accepted.body as { operationId: string };
    let answered = false;
    const poll = fastApi.operationStatus(token('dev-f'), operationId, 'https').then((r) => {
      answered = true;
      return r;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    await finishWebhook();
    expect(await poll).toMatchObject({
      status: 200,
      body: { operationId, status: 'failed', registrationState: { errorCode: 400207 } },
    });
  });

  it('with retry-after 0, answers assigning (retry-after 0) when the hold ends first', async () => {
    const { slowService, token, finishWebhook } = setup();
    const fastApi = new DeviceApi(slowService, { retryAfterSeconds: 0, pollHoldMs: 1 });
    const { operationId } = fastApi.register(token('dev-g'), '{}', 'mqtt').body as { operationId: string };
    expect(await fastApi.operationStatus(token('dev-g'), operationId, 'mqtt')).toMatchObject({
      status: 202,
      body: { status: 'assigning' },
      retryAfterSeconds: 0,
    });
    await finishWebhook();
    await slowService.whenIdle();
  });

  it('poll answers at once what needs no hold, and a poll to hold with a promise, reading the operation only after the hold when its allocation runs here', async () => {
    const store = new MemoryRegistrationStore();
    let reads = 0;
    const getOperation = store.getOperation.bind(store);
    store.getOperation = (operationId) => {
      reads++;
      return getOperation(operationId);
    };
    const { slowService, token, finishWebhook } = setup(store);
    const fastApi = new DeviceApi(slowService, { retryAfterSeconds: 0 });
    const slowApi = new DeviceApi(slowService, { retryAfterSeconds: 3 });
    const { operationId } = fastApi.register(token('dev-h'), '{}', 'mqtt').body as { operationId: string };
    expect(slowApi.poll(token('dev-h'), operationId, 'mqtt')).toMatchObject({ status: 202, retryAfterSeconds: 3 });
    expect(fastApi.poll(token('dev-h'), '4.0.0', 'mqtt')).toMatchObject({ status: 404 });
    // Another device's poll of it is not held: it is not found (read from the store).
    expect(fastApi.poll(token('dev-other'), operationId, 'mqtt')).toMatchObject({ status: 404 });
    reads = 0;
    const held = fastApi.poll(token('dev-h'), operationId, 'mqtt');
    expect(held).toBeInstanceOf(Promise);
    // Its allocation runs in this process: assigning without a read; the one read is after it ends.
    expect(reads).toBe(0);
    await finishWebhook();
    expect(await held).toMatchObject({ status: 200, body: { operationId, status: 'failed' } });
    expect(reads).toBe(1);
    await slowService.whenIdle();
    const now = fastApi.poll(token('dev-h'), operationId, 'mqtt');
    expect(now).toEqual(await fastApi.operationStatus(token('dev-h'), operationId, 'mqtt'));
    expect(now).toMatchObject({ status: 200, body: { operationId, status: 'failed' } });
  });

  it('with retry-after 0, holds a poll that reaches another process on the same store until that one finishes', async () => {
    const store = new MemoryRegistrationStore();
    const registering = setup(store);
    const polled = setup(store);
    const { operationId } = new DeviceApi(registering.slowService, { retryAfterSeconds: 0 }).register(
      registering.token('dev-w'),
      '{}',
      'https',
    ).body as { operationId: string };
    const otherApi = new DeviceApi(polled.slowService, { retryAfterSeconds: 0, pollHoldMs: 60_000 });
    let answered = false;
    const poll = otherApi.operationStatus(polled.token('dev-w'), operationId, 'https').then((r) => {
      answered = true;
      return r;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    await registering.finishWebhook();
    expect(await poll).toMatchObject({ status: 200, body: { operationId, status: 'failed' } });
    await polled.slowService.close();
  });
});
