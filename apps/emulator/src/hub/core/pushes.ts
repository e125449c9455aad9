import type { RelayedMethodEnd, RelayedMethodRequest } from './direct-methods.js';
import type { JsonObject } from './twin.js';

/**
 * What a hub owes a connected device after a change: a desired-properties patch (as IoT Hub pushes
 * it on `$iothub/twin/PATCH/properties/desired`, with its `$version`), or the end of its connection:
 * its identity was deleted (through the registry, or moved to another hub or device id by a DPS
 * re-provisioning), disabled, or the same device id connected again elsewhere (`connected`: IoT Hub
 * keeps one connection per device and drops the older, error 400027
 * ConnectionForcefullyClosedOnNewConnection). With `dps-emulator start --workers` the device may be
 * connected to another process than the one that made the change, so pushes also go through the
 * store (`HubPushOutbox`), which every process follows.
 */
export type HubPush =
  | { kind: 'desired'; hub: string; deviceId: string; desired: JsonObject }
  | { kind: 'deleted' | 'disabled'; hub: string; deviceId: string }
  /**
   * The device connected on `connection` (a name the transport gave it): every other connection of
   * the device is older and is closed. Between processes the push's `seq` orders it (the store
   * keeps only kind, hub and device); within a process, `connection` names the one that stays.
   */
  | { kind: 'connected'; hub: string; deviceId: string; connection?: string }
  /**
   * The device's cloud-to-device queue has a message to deliver (enqueued, or put back when the
   * MQTT connection it was locked to closed): the process holding the device's MQTT connection
   * reads the queue from the store and sends what is Enqueued (hub/core/c2d.ts).
   */
  | { kind: 'c2d'; hub: string; deviceId: string }
  | MethodPush;

/**
 * A direct method call relayed between the processes on the store (`DirectMethods`): a request
 * taken by one process for a device connected to another (`method`), and its end, from the process
 * holding the device back to the one the service waits on (`method-end`). Never written without a
 * shared store; never delivered to a device connection as a push.
 */
export type MethodPush =
  | ({ kind: 'method' } & RelayedMethodRequest)
  | { kind: 'method-end'; hub: string; deviceId: string; end: RelayedMethodEnd };

/** The pushes that end a device's connection where it is held. */
export function closesConnection(push: HubPush): boolean {
  return push.kind === 'deleted' || push.kind === 'disabled' || push.kind === 'connected';
}

/**
 * Where the hubs write the pushes they owe, inside the same store transaction as the change that
 * causes them: a committed change always has its push, and pushes keep the order of the changes
 * (two desired patches of one device, made on two processes, arrive in version order).
 */
export interface HubPushOutbox {
  /** Returns the push's place in the store's order (`seq`), when the store keeps one. */
  add(push: HubPush): number | undefined;
}

/**
 * Where the pushes a DPS assignment owes go (a device moved away from a hub or device id: its
 * connection there is closed). The assignment is written by the registration store, in a
 * transaction that may still roll back when the push is owed: the push is written to `outbox` in
 * that transaction (rolled back with it), and handed to `announce` (this process's connections)
 * only once the transaction has committed.
 */
export interface AssignmentPushes {
  outbox?: HubPushOutbox;
  announce(push: HubPush): void;
}
