import { describe, expect, it } from 'vitest';
import { type CurrentAssignment, initialTwinApplies, stayOnCurrentHub, substatusAfter } from './reprovision.js';

const current: CurrentAssignment = { hub: 'a.net', deviceId: 'd', substatus: 'initialAssignment' };
const migrate = { updateHubAssignment: true, migrateDeviceData: true };
const reset = { updateHubAssignment: true, migrateDeviceData: false };
const never = { updateHubAssignment: false, migrateDeviceData: true };

describe('reprovisioning', () => {
  it.each([
    ['first registration', undefined, migrate, 'b.net', 'initialAssignment', true, false],
    ['migrate to another hub', current, migrate, 'b.net', 'deviceDataMigrated', false, false],
    ['migrate, same hub: nothing happened to the data', current, migrate, 'A.net', 'initialAssignment', false, false],
    ['reset to initial config, another hub', current, reset, 'b.net', 'deviceDataReset', true, false],
    ['reset to initial config, same hub (factory reset)', current, reset, 'a.net', 'deviceDataReset', true, false],
    [
      'never reprovision',
      { ...current, substatus: 'deviceDataMigrated' as const },
      never,
      'a.net',
      'deviceDataMigrated',
      false,
      true,
    ],
  ] as const)('%s', (_case, previous, policy, hub, substatus, twin, stay) => {
    expect(substatusAfter(previous, policy, hub)).toBe(substatus);
    expect(initialTwinApplies(previous, policy)).toBe(twin);
    expect(stayOnCurrentHub(previous, policy)).toBe(stay);
  });
});
