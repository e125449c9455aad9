import type { AssignedSubstatus, ReprovisionPolicy } from '@dpskit/contracts';

/** Where a device currently is, from its last successful registration. */
export interface CurrentAssignment {
  hub: string;
  deviceId: string;
  substatus: AssignedSubstatus;
}

/**
 * The reprovisioning plan for one registration. With "never reprovision"
 * (`updateHubAssignment: false`) a device that was assigned before stays on its hub: built-in
 * policies are skipped and the custom webhook is still called, with `linkedHubs` = [current hub],
 * as DPS documents.
 */
export function stayOnCurrentHub(current: CurrentAssignment | undefined, policy: ReprovisionPolicy): boolean {
  return current !== undefined && !policy.updateHubAssignment;
}

/**
 * The substatus of an assignment. DPS documents `deviceDataMigrated` (hub changed, migrate) and
 * `deviceDataReset` (reset to initial config, "often used for a factory reset without changing
 * hubs"). It does not say what a re-registration that leaves the device where it was reports;
 * the emulator keeps the previous substatus then, because nothing happened to the device's data.
 */
export function substatusAfter(
  current: CurrentAssignment | undefined,
  policy: ReprovisionPolicy,
  newHub: string,
): AssignedSubstatus {
  if (!current) return 'initialAssignment';
  if (!policy.updateHubAssignment) return current.substatus;
  if (!policy.migrateDeviceData) return 'deviceDataReset';
  return current.hub.toLowerCase() === newHub.toLowerCase() ? current.substatus : 'deviceDataMigrated';
}

/** Whether DPS writes the initial twin: on initial assignment and on "reprovision and reset". */
export function initialTwinApplies(current: CurrentAssignment | undefined, policy: ReprovisionPolicy): boolean {
  if (!current) return true;
  return policy.updateHubAssignment && !policy.migrateDeviceData;
}
