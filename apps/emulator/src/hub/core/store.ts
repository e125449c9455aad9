import { type AssignmentPlan, type HubAssignment, planAssignment } from './assignment.js';
import type { HubDevice } from './identity.js';

/** A device-to-cloud message as the hub received it. */
export interface TelemetryRecord {
  hub: string;
  deviceId: string;
  /** The body as sent (the SDKs send UTF-8 text or bytes). */
  body: Buffer;
  /** Application and system properties (`$.mid`, `$.ct`, …) as the device sent them. */
  properties: Record<string, string>;
  transport: 'mqtt' | 'https';
  receivedUtc: string;
}

/**
 * The port the emulated hubs persist through (SQLite in the emulator, memory in unit tests).
 * Device ids and hub names are case-insensitive keys.
 */
export interface HubStore {
  getDevice(hub: string, deviceId: string): HubDevice | undefined;
  putDevice(device: HubDevice): void;
  deleteDevice(hub: string, deviceId: string): boolean;
  listDevices(hub?: string): HubDevice[];
  /** Runs `fn` atomically (read-modify-write of a twin). */
  transaction<T>(fn: () => T): T;
  /** Saves a message; the store keeps the newest `MAX_TELEMETRY_KEPT` per hub. */
  addTelemetry(message: TelemetryRecord): void;
  /** Messages of a hub (and device), oldest first. */
  telemetry(hub: string, deviceId?: string): TelemetryRecord[];
}

/** How many telemetry messages each hub keeps (oldest dropped first): enough to observe, bounded. */
export const MAX_TELEMETRY_KEPT = 1000;

/** Plans and applies an assignment's writes through `store` (inside the caller's transaction). */
export function applyAssignment(store: HubStore, assignment: HubAssignment, now: Date): AssignmentPlan {
  const source = assignment.previous
    ? store.getDevice(assignment.previous.hub, assignment.previous.deviceId)
    : undefined;
  const target = store.getDevice(assignment.hub, assignment.deviceId);
  const plan = planAssignment(assignment, { ...(source ? { source } : {}), ...(target ? { target } : {}) }, now);
  for (const write of plan.writes) {
    if (write.kind === 'put') store.putDevice(write.device);
    else store.deleteDevice(write.hub, write.deviceId);
  }
  return plan;
}

export class MemoryHubStore implements HubStore {
  readonly #devices = new Map<string, HubDevice>();
  readonly #telemetry: TelemetryRecord[] = [];

  getDevice(hub: string, deviceId: string): HubDevice | undefined {
    const device = this.#devices.get(key(hub, deviceId));
    return device ? structuredClone(device) : undefined;
  }

  putDevice(device: HubDevice): void {
    this.#devices.set(key(device.identity.hub, device.identity.deviceId), structuredClone(device));
  }

  deleteDevice(hub: string, deviceId: string): boolean {
    return this.#devices.delete(key(hub, deviceId));
  }

  listDevices(hub?: string): HubDevice[] {
    return [...this.#devices.values()]
      .filter((d) => hub === undefined || d.identity.hub.toLowerCase() === hub.toLowerCase())
      .map((d) => structuredClone(d));
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  addTelemetry(message: TelemetryRecord): void {
    this.#telemetry.push(structuredClone(message));
    const ofHub = this.#telemetry.filter((m) => m.hub.toLowerCase() === message.hub.toLowerCase());
    if (ofHub.length > MAX_TELEMETRY_KEPT)
      this.#telemetry.splice(this.#telemetry.indexOf(ofHub[0] as TelemetryRecord), 1);
  }

  telemetry(hub: string, deviceId?: string): TelemetryRecord[] {
    return this.#telemetry
      .filter(
        (m) =>
          m.hub.toLowerCase() === hub.toLowerCase() &&
          (deviceId === undefined || m.deviceId.toLowerCase() === deviceId.toLowerCase()),
      )
      .map((m) => structuredClone(m));
  }
}

function key(hub: string, deviceId: string): string {
  return `${hub.toLowerCase()}\n${deviceId.toLowerCase()}`;
}
