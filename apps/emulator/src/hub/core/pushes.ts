import type { HubEvent } from './hub-service.js';
import type { JsonObject } from './twin.js';

/**
 * What a hub owes a connected device after a registry call: a desired-properties patch (as IoT
 * Hub pushes it on `$iothub/twin/PATCH/properties/desired`, with its `$version`), or the end of
 * its connection when its identity was deleted. With `dps-emulator start --workers` the device may
 * be connected to another process than the one that served the call, so pushes also go through the
 * store (`HubPushOutbox`), which every process follows.
 */
export type HubPush =
  | { kind: 'desired'; hub: string; deviceId: string; desired: JsonObject }
  | { kind: 'deleted'; hub: string; deviceId: string };

/**
 * Where `HubService` writes the pushes it owes, inside the same store transaction as the change
 * that causes them: a committed change always has its push, and pushes keep the order of the
 * changes (two desired patches of one device, made on two processes, arrive in version order).
 */
export interface HubPushOutbox {
  add(push: HubPush): void;
}

/** The push a hub event asks for, if any (the in-process path: the event of the call just served). */
export function pushOfEvent(event: HubEvent): HubPush | undefined {
  if (event.kind === 'twin-updated') {
    return event.desired
      ? { kind: 'desired', hub: event.hub, deviceId: event.deviceId, desired: event.desired }
      : undefined;
  }
  if (event.kind === 'device-deleted') return { kind: 'deleted', hub: event.hub, deviceId: event.deviceId };
  return undefined;
}
