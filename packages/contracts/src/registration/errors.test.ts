import { describe, expect, it } from 'vitest';
import {
  createErrorBody,
  DpsErrorCode,
  DpsErrorMessage,
  parseProvisioningErrorBodyJson,
  statusOfErrorCode,
} from './errors.js';

describe('DPS errors', () => {
  it('formats the custom allocation failure exactly as DPS does', () => {
    expect(DpsErrorMessage.customAllocationFailed(400)).toBe('Custom allocation failed with status code: 400');
  });

  it('keeps every code in the family of its HTTP status', () => {
    expect(statusOfErrorCode(DpsErrorCode.CustomAllocationFailed)).toBe(400);
    expect(statusOfErrorCode(DpsErrorCode.Unauthorized)).toBe(401);
    expect(statusOfErrorCode(DpsErrorCode.OperationNotFound)).toBe(404);
    expect(statusOfErrorCode(DpsErrorCode.Throttled)).toBe(429);
    for (const code of Object.values(DpsErrorCode)) expect(String(code)).toMatch(/^[45]\d{5}$/);
  });

  it('creates error bodies that parse back', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const body = createErrorBody(DpsErrorCode.Unauthorized, DpsErrorMessage.unauthorized, { trackingId: 't', now });
    expect(body).toEqual({
      errorCode: 401002,
      trackingId: 't',
      message: 'Unauthorized',
      timestampUtc: '2026-01-01T00:00:00.0000000Z',
    });
    const parsed = parseProvisioningErrorBodyJson(JSON.stringify(body));
    expect(parsed.ok).toBe(true);
    expect(createErrorBody(429001, DpsErrorMessage.throttled).trackingId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('names the hub, the timeout or the cause in dpskit messages for undocumented webhook outcomes', () => {
    expect(DpsErrorMessage.customAllocationHubNotLinked('rogue.azure-devices.net', ['a.net', 'b.net'])).toBe(
      'Custom allocation failed: the webhook returned iotHubHostName "rogue.azure-devices.net", which is not one of the linked hubs (a.net, b.net).',
    );
    expect(DpsErrorMessage.customAllocationHubNotLinked('x', [])).toContain('(none)');
    expect(DpsErrorMessage.customAllocationTimeout(250)).toContain('within 250 ms (timeout)');
    expect(DpsErrorMessage.customAllocationConnectionFailed).toBe('An error occurred while sending the request.');
    expect(DpsErrorMessage.customAllocationInvalidJson('Unexpected token')).toContain(
      'not valid JSON (Unexpected token)',
    );
    expect(DpsErrorMessage.customAllocationInvalidResponse('payload: expected object')).toContain(
      'payload: expected object',
    );
    expect(DpsErrorMessage.allocationNoIotHub('static enrollment names 2 hubs')).toBe(
      'Allocation failed: no IoT hub can be assigned (static enrollment names 2 hubs).',
    );
    expect(statusOfErrorCode(DpsErrorCode.AllocationNoIotHub)).toBe(400);
    expect(statusOfErrorCode(DpsErrorCode.MethodNotAllowed)).toBe(405);
    expect(statusOfErrorCode(DpsErrorCode.RequestTimeout)).toBe(408);
    expect(statusOfErrorCode(DpsErrorCode.RequestHeaderFieldsTooLarge)).toBe(431);
  });
});
