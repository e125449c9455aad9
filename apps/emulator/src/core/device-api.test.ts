import { createRegistrationSasToken, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { groupEnrollment } from '../testing/enrollments.js';
import { DeviceApi } from './device-api.js';
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
    const poll = api.operationStatus(attested('dev-1'), (response.body as { operationId: string }).operationId);
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

  it('answers with DPS error bodies: 401, 400 for bad JSON and mismatched ids, 404 for unknown operations and records', () => {
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
    expect(api.operationStatus(failed, 'x').status).toBe(401);
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
    expect(api.operationStatus(attested('dev-2'), '4.0.0')).toMatchObject({ status: 404, body: { errorCode: 404006 } });
    expect(api.statusLookup(attested('never'))).toMatchObject({ status: 404, body: { errorCode: 404001 } });
  });
});
