import { describe, expect, it } from 'vitest';
import { parseAllocationResponse, parseAllocationResponseJson } from './response.js';

describe('parseAllocationResponse', () => {
  it('accepts the documented example with twin and payload', () => {
    const result = parseAllocationResponse({
      iotHubHostName: 'custom-allocation-toasters-hub.azure-devices.net',
      initialTwin: {
        properties: { desired: { state: 'ready', darknessSetting: 'medium' } },
        tags: { deviceType: 'toaster' },
      },
      payload: { property1: 'value1' },
    });
    if (!result.ok) throw result.error;
    expect(result.value.initialTwin?.tags).toEqual({ deviceType: 'toaster' });
  });

  it('lets an empty or null hub through: DPS maps it to 400208, not to a malformed body', () => {
    expect(parseAllocationResponse({ iotHubHostName: '' }).ok).toBe(true);
    expect(parseAllocationResponse({ iotHubHostName: null }).ok).toBe(true);
    expect(parseAllocationResponse({}).ok).toBe(true);
  });

  it('rejects a non-object payload and a non-string hub, by path', () => {
    const result = parseAllocationResponseJson('{"iotHubHostName":42,"payload":"text"}');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.issues.map((i) => i.path)).toEqual(['iotHubHostName', 'payload']);
  });

  it('keeps unknown properties such as deviceId', () => {
    const result = parseAllocationResponse({ iotHubHostName: 'h', deviceId: 'x' });
    if (!result.ok) throw result.error;
    expect(result.value).toEqual({ iotHubHostName: 'h', deviceId: 'x' });
  });
});
