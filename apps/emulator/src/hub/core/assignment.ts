import type { InitialTwin } from '@dpskit/contracts';
import { type DeviceIdentity, type HubDevice, newGenerationId } from './identity.js';
import { initialTwinState } from './twin.js';

/**
 * What one successful DPS assignment does to the linked hubs, as DPS documents it
 * (azure-docs concepts-device-reprovision): the device identity is created in the assigned hub
 * with the credentials the device attested with; a device that changes hubs (or device id) is
 * removed from the old one; its twin is the initial twin on initial assignment and on
 * "reprovision and reset" (`migrateDeviceData: false`), and is carried over otherwise.
 */
export interface HubAssignment {
  registrationId: string;
  hub: string;
  deviceId: string;
  /** The keys the device attested with: the individual enrollment's, or derived from the group's. */
  keys?: { primaryKey: string; secondaryKey: string };
  /**
   * An X.509 device: the thumbprint of the certificate it attested with, in both slots. DPS creates
   * X.509 devices as `selfSigned` by that certificate, for individual enrollments and groups alike
   * (see the emulator's docs/hubs.md, "X.509 devices on the hub").
   */
  x509Thumbprint?: { primaryThumbprint: string; secondaryThumbprint: string };
  /** Where the device was before this assignment (the previous successful one). */
  previous?: { hub: string; deviceId: string };
  /** Whether the twin is (re)set to `initialTwin` (DPS: `initialTwinApplies`). */
  resetTwin: boolean;
  initialTwin?: InitialTwin;
}

export type HubWrite = { kind: 'put'; device: HubDevice } | { kind: 'delete'; hub: string; deviceId: string };

export interface AssignmentPlan {
  writes: HubWrite[];
  /** What happened to the identity, for the log and events. */
  action: 'created' | 'updated' | 'moved' | 'reset';
}

/** The same place: hub names compare in any case, device ids exactly (IoT Hub's are case-sensitive). */
const same = (a: { hub: string; deviceId: string }, b: { hub: string; deviceId: string }) =>
  a.hub.toLowerCase() === b.hub.toLowerCase() && a.deviceId === b.deviceId;

/**
 * Plans the hub writes of an assignment from what the hubs hold now: `source` (the device at its
 * previous place, if it is still there) and `target` (whatever holds the assigned hub and device id).
 * A twin with nothing to migrate from (the identity was deleted through the registry meanwhile)
 * starts from the initial twin.
 */
export function planAssignment(
  assignment: HubAssignment,
  existing: { source?: HubDevice; target?: HubDevice },
  now: Date,
): AssignmentPlan {
  const at = now.toISOString();
  const moved = assignment.previous !== undefined && !same(assignment.previous, assignment);
  const carried = moved ? existing.source : (existing.target ?? existing.source);
  const twin =
    assignment.resetTwin || !carried ? initialTwinState(assignment.initialTwin, now) : structuredClone(carried.twin);
  const target = existing.target;
  const identity: DeviceIdentity = target
    ? {
        ...target.identity,
        hub: assignment.hub,
        deviceId: assignment.deviceId,
        etagVersion: target.identity.etagVersion + 1,
        registrationId: assignment.registrationId,
      }
    : {
        hub: assignment.hub,
        deviceId: assignment.deviceId,
        status: 'enabled',
        generationId: newGenerationId(),
        etagVersion: 0,
        createdUtc: at,
        statusUpdatedUtc: at,
        registrationId: assignment.registrationId,
      };
  delete identity.primaryKey;
  delete identity.secondaryKey;
  delete identity.primaryThumbprint;
  delete identity.secondaryThumbprint;
  if (assignment.keys) {
    identity.primaryKey = assignment.keys.primaryKey;
    identity.secondaryKey = assignment.keys.secondaryKey;
    identity.authenticationType = 'sas';
  } else if (assignment.x509Thumbprint) {
    identity.primaryThumbprint = assignment.x509Thumbprint.primaryThumbprint;
    identity.secondaryThumbprint = assignment.x509Thumbprint.secondaryThumbprint;
    identity.authenticationType = 'selfSigned';
  } else {
    // Neither keys nor a certificate (an attestation this emulator does not know): no credential
    // the hub could check; the registry and twin still work.
    identity.authenticationType = 'certificateAuthority';
  }
  const device: HubDevice = {
    identity,
    twin,
    connectionState: target?.connectionState ?? 'Disconnected',
    ...(target?.connectionStateUpdatedUtc ? { connectionStateUpdatedUtc: target.connectionStateUpdatedUtc } : {}),
    ...(target?.lastActivityUtc ? { lastActivityUtc: target.lastActivityUtc } : {}),
    ...(target?.connection ? { connection: target.connection } : {}),
  };
  if (target && (assignment.resetTwin || carried !== target)) {
    // A twin replaced under an existing identity moves its version on: a registry client holding
    // the old etag must not overwrite it.
    device.twin.version = Math.max(twin.version, target.twin.version) + 1;
  }
  const writes: HubWrite[] = [{ kind: 'put', device }];
  if (moved && assignment.previous && existing.source) {
    writes.push({ kind: 'delete', hub: assignment.previous.hub, deviceId: assignment.previous.deviceId });
  }
  const action = !assignment.previous
    ? target
      ? 'updated'
      : 'created'
    : moved
      ? 'moved'
      : assignment.resetTwin
        ? 'reset'
        : 'updated';
  return { writes, action };
}
