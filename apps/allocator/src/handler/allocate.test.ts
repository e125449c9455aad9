import { describe, expect, it } from 'vitest';
import { accept, reject } from '../policy/policy.js';
import { invoke } from '../testing/invoke.js';
import { HEATPUMP_BODY, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { allocateHandler, createAllocateHandler } from './allocate.js';

describe('allocateHandler (tutorial policy)', () => {
  it('answers the toaster with 200 and the tutorial JSON body', async () => {
    const result = await invoke(allocateHandler, TOASTER_BODY);
    expect(result.status).toBe(200);
    expect(result.contentType).toBe('application/json; charset=utf-8');
    expect(result.text).toBe(`{"iotHubHostName":"${TOASTERS_HUB}"}`);
  });

  it('logs what the Logs pane shows: body, linked hubs, selected hub, response', async () => {
    const { logs } = await invoke(allocateHandler, TOASTER_BODY);
    expect(logs.map((r) => r.msg)).toEqual(['Request.Body', 'Linked hubs', 'Selected hub', 'Response']);
    expect(logs.every((r) => r.source === 'function' && r.functionName === 'allocate')).toBe(true);
    expect(logs[0]!.data).toEqual({ body: JSON.parse(TOASTER_BODY) });
    expect(logs[1]!.data).toEqual({ registrationId: 'contoso-toaster-007', linkedHubs: [TOASTERS_HUB] });
    expect(logs[2]!.data).toEqual({ registrationId: 'contoso-toaster-007', iotHubHostName: TOASTERS_HUB });
    expect(logs[3]!.data).toEqual({ status: 200, body: { iotHubHostName: TOASTERS_HUB } });
  });

  it('refuses the heat pump with 400 and the plain-text tutorial message', async () => {
    const result = await invoke(allocateHandler, HEATPUMP_BODY);
    expect(result.status).toBe(400);
    expect(result.contentType).toBe('text/plain; charset=utf-8');
    expect(result.text).toBe('Unrecognized device registration.');
    const rejected = result.logs.find((r) => r.msg === 'Rejected');
    expect(rejected?.level).toBe('warn');
    expect(rejected?.data).toEqual({
      registrationId: 'contoso-heatpump-088',
      status: 400,
      reason: 'Unrecognized device registration.',
    });
    // The device payload arrives under deviceRuntimeContext and is visible in the log.
    const body = result.logs[0]!.data!.body as { deviceRuntimeContext: { payload: unknown } };
    expect(body.deviceRuntimeContext.payload).toEqual({
      MyDeviceFirmwareVersion: '12.0.2.5',
      MyDeviceProvisioningVersion: '1.0.0.0',
    });
  });

  it('answers 400 for an empty body', async () => {
    for (const body of [undefined, '', '  \n']) {
      const result = await invoke(allocateHandler, body);
      expect(result.status).toBe(400);
      expect(result.text).toBe('Request body is empty: expected an allocation request as JSON.');
    }
  });

  it('answers 400 for a body nested too deep to handle, and logs it as text (a JSON line can still be written)', async () => {
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    const result = await invoke(allocateHandler, deep);
    expect(result.status).toBe(400);
    expect(result.text).toBe(
      'Invalid allocation request: body is not valid JSON (it is nested more than 64 levels deep)',
    );
    expect(result.logs[0]!.data).toEqual({ body: deep });
    expect(() => JSON.stringify(result.logs[0])).not.toThrow();
  });

  it('answers 400 naming the JSON syntax problem for a malformed body', async () => {
    const result = await invoke(allocateHandler, '{"deviceRuntimeContext": ');
    expect(result.status).toBe(400);
    expect(result.contentType).toBe('text/plain; charset=utf-8');
    expect(result.text).toMatch(/^Invalid allocation request: body is not valid JSON \(.+\)$/);
    expect(result.logs[0]!.data).toEqual({ body: '{"deviceRuntimeContext": ' });
  });

  it('answers 400 listing every invalid field of a schema-invalid request', async () => {
    const result = await invoke(allocateHandler, '{"deviceRuntimeContext":{"registrationId":7},"linkedHubs":"hub"}');
    expect(result.status).toBe(400);
    expect(result.text).toContain('Invalid allocation request:');
    expect(result.text).toContain('deviceRuntimeContext.registrationId');
    expect(result.text).toContain('linkedHubs');
  });

  it('answers 400 when the request names neither an enrollment group nor an individual enrollment', async () => {
    const result = await invoke(allocateHandler, '{"deviceRuntimeContext":{"registrationId":"r"},"linkedHubs":[]}');
    expect(result.status).toBe(400);
    expect(result.text).toContain('exactly one of enrollmentGroup or individualEnrollment is required');
  });

  it('answers 400 for JSON that is not an object', async () => {
    for (const body of ['[]', '42', 'null', '"text"']) {
      const result = await invoke(allocateHandler, body);
      expect(result.status).toBe(400);
      expect(result.text).toMatch(/^Invalid allocation request: /);
    }
  });

  it('answers 400 with the tutorial message for an empty registration id', async () => {
    const request = JSON.parse(TOASTER_BODY) as { deviceRuntimeContext: { registrationId: string } };
    request.deviceRuntimeContext.registrationId = '';
    const result = await invoke(allocateHandler, JSON.stringify(request));
    expect([result.status, result.text]).toEqual([400, 'Registration ID not provided for the device.']);
  });
});

describe('createAllocateHandler (custom policies)', () => {
  it('returns initialTwin and payload when the policy sets them', async () => {
    const handler = createAllocateHandler(async (request) =>
      accept({
        iotHubHostName: request.linkedHubs[0]!,
        initialTwin: { tags: { deviceType: 'toaster' }, properties: { desired: { darknessSetting: 'medium' } } },
        payload: { welcome: request.deviceRuntimeContext.registrationId },
      }),
    );
    const result = await invoke(handler, TOASTER_BODY);
    expect(result.status).toBe(200);
    expect(JSON.parse(result.text)).toEqual({
      iotHubHostName: TOASTERS_HUB,
      initialTwin: { tags: { deviceType: 'toaster' }, properties: { desired: { darknessSetting: 'medium' } } },
      payload: { welcome: 'contoso-toaster-007' },
    });
  });

  it('passes a policy rejection status through (429 makes DPS retry)', async () => {
    const result = await invoke(
      createAllocateHandler(() => reject('busy', 429)),
      TOASTER_BODY,
    );
    expect([result.status, result.text]).toEqual([429, 'busy']);
  });

  it('answers 500 when the policy throws, and logs the error', async () => {
    const result = await invoke(
      createAllocateHandler(() => {
        throw new Error('database down');
      }),
      TOASTER_BODY,
    );
    expect([result.status, result.text]).toEqual([500, 'Allocation policy failed: database down']);
    expect(result.logs.some((r) => r.level === 'error' && r.data?.error === 'database down')).toBe(true);
  });

  it('answers 500 when the policy rejects with a status that is not an error status', async () => {
    const result = await invoke(
      createAllocateHandler(() => ({ ok: false, status: 200, message: 'odd' })),
      TOASTER_BODY,
    );
    expect(result.status).toBe(500);
    expect(result.text).toBe('Allocation policy returned an invalid rejection status 200 (expected 400-599).');
  });

  it('answers 500 naming the field when the policy returns a response DPS would not accept', async () => {
    const handler = createAllocateHandler(
      () => ({ ok: true, response: { iotHubHostName: TOASTERS_HUB, payload: 'not an object' } }) as never,
    );
    const result = await invoke(handler, TOASTER_BODY);
    expect(result.status).toBe(500);
    expect(result.text).toMatch(
      /^Allocation policy returned an invalid response: Invalid allocation response: payload/,
    );
  });

  it('warns when the selected hub is not one of the linked hubs, but still answers it', async () => {
    const result = await invoke(
      createAllocateHandler(() => accept({ iotHubHostName: 'elsewhere.azure-devices.net' })),
      TOASTER_BODY,
    );
    expect(result.status).toBe(200);
    const warning = result.logs.find((r) => r.level === 'warn');
    expect(warning?.msg).toBe('Selected hub is not one of the linked hubs');
  });

  it('lets a policy answer without a hub (DPS then fails the device with 400208)', async () => {
    const result = await invoke(
      createAllocateHandler(() => accept({ iotHubHostName: null })),
      TOASTER_BODY,
    );
    expect([result.status, result.text]).toEqual([200, '{"iotHubHostName":null}']);
    expect(result.logs.some((r) => r.msg === 'No hub selected')).toBe(true);
  });
});
