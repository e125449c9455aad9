import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AllocationRequest } from '@dpskit/allocator';
import {
  FIRMWARE_TARGET,
  firmwarePolicy,
  initialTwinFor,
  Message,
  parseFirmwareVersion,
} from '../src/firmware-policy.js';

const CURRENT_HUB = 'contoso-fw-current.azure-devices.net';
const LEGACY_HUB = 'contoso-fw-legacy.azure-devices.net';

/** The webhook request DPS sends, with the device's payload. */
function request(
  payload: Record<string, unknown> | undefined,
  linkedHubs = [CURRENT_HUB, LEGACY_HUB],
): AllocationRequest {
  return {
    enrollmentGroup: { enrollmentGroupId: 'sensors', attestation: { type: 'symmetricKey' } },
    deviceRuntimeContext: { registrationId: 'sensor-001', symmetricKey: {}, ...(payload ? { payload } : {}) },
    linkedHubs,
  } as AllocationRequest;
}

describe('firmwarePolicy', () => {
  it('sends firmware 2.x and later to the -current hub with the current twin', () => {
    for (const firmwareVersion of ['2.0.0', '2.4.1', '10.0.3']) {
      assert.deepEqual(firmwarePolicy(request({ firmwareVersion })), {
        ok: true,
        response: {
          iotHubHostName: CURRENT_HUB,
          initialTwin: initialTwinFor('current'),
          payload: { firmwareLine: 'current', firmwareTarget: FIRMWARE_TARGET.current },
        },
      });
    }
  });

  it('sends firmware 1.x to the -legacy hub, whatever the order of the linked hubs', () => {
    const decision = firmwarePolicy(request({ firmwareVersion: '1.7.2' }, [LEGACY_HUB, CURRENT_HUB]));
    assert.equal(decision.ok, true);
    assert.equal(decision.ok && decision.response.iotHubHostName, LEGACY_HUB);
    assert.deepEqual(decision.ok && decision.response.initialTwin, {
      tags: { firmwareLine: 'legacy' },
      properties: { desired: { firmwareTarget: '1.9.4', telemetryIntervalSeconds: 300 } },
    });
  });

  it('refuses firmware 0.x', () => {
    assert.deepEqual(firmwarePolicy(request({ firmwareVersion: '0.9.0' })), {
      ok: false,
      status: 400,
      message: Message.Unsupported('0.9.0'),
    });
  });

  it('refuses a device without a usable firmwareVersion', () => {
    for (const payload of [
      undefined,
      {},
      { firmwareVersion: 2 },
      { firmwareVersion: '2.0' },
      { firmwareVersion: 'v2.0.0' },
    ]) {
      assert.deepEqual(firmwarePolicy(request(payload)), { ok: false, status: 400, message: Message.NoVersion });
    }
  });

  it('refuses when the enrollment links no hub for the firmware line', () => {
    assert.deepEqual(firmwarePolicy(request({ firmwareVersion: '1.0.0' }, [CURRENT_HUB])), {
      ok: false,
      status: 400,
      message: Message.NoHub('legacy'),
    });
  });
});

describe('parseFirmwareVersion', () => {
  it('reads major.minor.patch and nothing else', () => {
    assert.deepEqual(parseFirmwareVersion('2.14.0'), [2, 14, 0]);
    assert.equal(parseFirmwareVersion('2.14'), undefined);
    assert.equal(parseFirmwareVersion('2.14.0-beta'), undefined);
    assert.equal(parseFirmwareVersion(null), undefined);
  });
});
