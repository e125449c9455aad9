import { type AssignmentPlan, type HubAssignment, planAssignment } from './assignment.js';
import {
  type C2dFeedbackRecord,
  type C2dStore,
  MAX_C2D_FEEDBACK_KEPT,
  type QueuedC2d,
  type QueuedC2dFeedback,
} from './c2d.js';
import { type HubEventFields, type PartitionState, partitionStateOf, type StoredHubEvent } from './eventhub.js';
import type { EventHubStore } from './eventhub-service.js';
import type { HubDevice } from './identity.js';
import { type HubModule, identityKey } from './modules.js';
import type { HubPushOutbox } from './pushes.js';

/** A device-to-cloud message as the hub received it. */
export interface TelemetryRecord {
  hub: string;
  deviceId: string;
  /** The module of the device that sent it (`ModuleClient`); absent for the device's own messages. */
  moduleId?: string;
  /** The body as sent (the SDKs send UTF-8 text or bytes). */
  body: Buffer;
  /** Application and system properties (`$.mid`, `$.ct`, …) as the device sent them. */
  properties: Record<string, string>;
  transport: 'mqtt' | 'https' | 'amqp';
  receivedUtc: string;
}

/**
 * The port the emulated hubs persist through (SQLite in the emulator, memory in unit tests).
 * Hub names are case-insensitive keys (host names); device ids are case-sensitive, as in IoT Hub
 * ("a case-sensitive string", azure-docs iot-hub-devguide-identity-registry).
 */
export interface HubStore extends C2dStore, EventHubStore {
  getDevice(hub: string, deviceId: string): HubDevice | undefined;
  putDevice(device: HubDevice): void;
  /**
   * Deletes the device, its cloud-to-device queue and its modules (IoT Hub's queue and module
   * identities go with the device identity).
   */
  deleteDevice(hub: string, deviceId: string): boolean;
  getModule(hub: string, deviceId: string, moduleId: string): HubModule | undefined;
  putModule(module: HubModule): void;
  deleteModule(hub: string, deviceId: string, moduleId: string): boolean;
  /** A device's modules in module id order (ordinal; at most MAX_MODULES_PER_DEVICE). */
  modulesOf(hub: string, deviceId: string): HubModule[];
  /**
   * The modules of a hub in (device id, module id) order, those after `after` (all from the first
   * without it), at most `limit`: module twin queries read a hub a batch at a time.
   */
  modulesAfter(
    hub: string,
    after: readonly [deviceId: string, moduleId: string] | undefined,
    limit: number,
  ): HubModule[];
  listDevices(hub?: string): HubDevice[];
  /**
   * The devices of a hub in device id order (ordinal: ids are ASCII), those after `afterDeviceId`
   * (all from the first without it), at most `limit`: the registry's list and queries read a hub
   * a batch at a time, never all of it at once.
   */
  devicesAfter(hub: string, afterDeviceId: string | undefined, limit: number): HubDevice[];
  /** How many devices a hub has, and how many of them are enabled (`GET /statistics/devices`). */
  deviceStatistics(hub: string): { total: number; enabled: number };
  /** Runs `fn` atomically (read-modify-write of a twin). */
  transaction<T>(fn: () => T): T;
  /**
   * Saves a message; the store keeps the newest `MAX_TELEMETRY_KEPT` per hub and, besides, each
   * device's newest `MAX_TELEMETRY_PER_DEVICE` (so a chatty device never hides a quiet one's last
   * messages): at most 1000 + 10 per device. With `event`, the message is also the built-in
   * endpoint's event: numbered in its partition (sequence number, offset) in the same write.
   */
  addTelemetry(message: TelemetryRecord, event?: HubEventFields): void;
  /** Messages of a hub (and device), oldest first; with `newest`, only the newest that many. */
  telemetry(hub: string, deviceId?: string, newest?: number): TelemetryRecord[];
}

/** How many telemetry messages each hub keeps (oldest dropped first): enough to observe, bounded. */
export const MAX_TELEMETRY_KEPT = 1000;

/** How many of its newest messages each device keeps in any case (the web view's "last telemetry"). */
export const MAX_TELEMETRY_PER_DEVICE = 10;

/** A device as the change feed gives it: `seq` increases with every write of it. */
export interface ChangedHubDevice {
  seq: number;
  device: HubDevice;
  /** The device's module identities, when it has any: how many, and how many are connected. */
  modules?: { count: number; connected: number };
}

/**
 * What the web view reads of the hubs, live: every device write (and every write of one of its
 * modules) gets the next change `seq`, so a reader (any process on the same store) follows the
 * writes without holding state of its own.
 */
export interface HubChangeFeed {
  /** Devices written after `afterSeq`, oldest change first, at most `limit`. */
  devicesChangedAfter(afterSeq: number, limit: number): ChangedHubDevice[];
  /** One device with its change `seq`. */
  changedDevice(hub: string, deviceId: string): ChangedHubDevice | undefined;
  /** The `limit` most recently written devices of a hub, newest first. */
  latestChangedDevices(hub: string, limit: number): ChangedHubDevice[];
  /** The newest change `seq` (0: none yet). */
  latestDeviceChange(): number;
  /** Devices per hub, keyed by lower-case host name. */
  deviceCounts(): Map<string, number>;
}

/**
 * Plans and applies an assignment's writes through `store` (inside the caller's transaction). A
 * device moved away from a hub (or device id) is deleted there, and its connection to it is owed a
 * close: `outbox` gets a `deleted` push for it in the same transaction.
 */
export function applyAssignment(
  store: HubStore,
  assignment: HubAssignment,
  now: Date,
  outbox?: HubPushOutbox,
): AssignmentPlan {
  const source = assignment.previous
    ? store.getDevice(assignment.previous.hub, assignment.previous.deviceId)
    : undefined;
  const target = store.getDevice(assignment.hub, assignment.deviceId);
  const plan = planAssignment(assignment, { ...(source ? { source } : {}), ...(target ? { target } : {}) }, now);
  for (const write of plan.writes) {
    if (write.kind === 'put') {
      store.putDevice(write.device);
      continue;
    }
    // The device's modules go with it (deleteDevice), and their connections with theirs.
    const modules = store.modulesOf(write.hub, write.deviceId).map(identityKey);
    if (store.deleteDevice(write.hub, write.deviceId))
      for (const deviceId of [write.deviceId, ...modules]) outbox?.add({ kind: 'deleted', hub: write.hub, deviceId });
  }
  return plan;
}

export class MemoryHubStore implements HubStore {
  readonly #devices = new Map<string, HubDevice>();
  /** Keyed by `key(hub, deviceId)`, then by module id. */
  readonly #modules = new Map<string, Map<string, HubModule>>();
  readonly #telemetry: TelemetryRecord[] = [];
  readonly #c2d = new Map<string, QueuedC2d[]>();
  readonly #feedback: { seq: number; hub: string; holder?: string; record: C2dFeedbackRecord }[] = [];
  /** The event of each stored message that is one (its partition numbering with it). */
  readonly #events = new WeakMap<TelemetryRecord, StoredHubEvent & { nextOffset: number }>();
  #feedbackSeq = 0;

  /** A partition's events kept, oldest first. */
  #partition(hub: string, partition: number): (StoredHubEvent & { nextOffset: number })[] {
    const hubKey = hub.toLowerCase();
    const events: (StoredHubEvent & { nextOffset: number })[] = [];
    for (const message of this.#telemetry) {
      const event = this.#events.get(message);
      if (event && event.partition === partition && message.hub.toLowerCase() === hubKey) events.push(event);
    }
    return events;
  }

  eventsFrom(hub: string, partition: number, from: number, limit: number): StoredHubEvent[] {
    return this.#partition(hub, partition)
      .filter((e) => e.sequenceNumber >= from)
      .slice(0, limit)
      .map(({ nextOffset: _, ...e }) => ({ ...e, body: Buffer.from(e.body), properties: { ...e.properties } }));
  }

  partitionState(hub: string, partition: number): PartitionState {
    const events = this.#partition(hub, partition);
    return partitionStateOf(events[0], events[events.length - 1]);
  }

  firstSequenceWhere(
    hub: string,
    partition: number,
    where: { offset: number; inclusive: boolean } | { enqueuedAfterMs: number },
  ): number | undefined {
    const found = this.#partition(hub, partition).find((event) =>
      'offset' in where
        ? where.inclusive
          ? event.offset >= where.offset
          : event.offset > where.offset
        : event.enqueuedMs > where.enqueuedAfterMs,
    );
    return found?.sequenceNumber;
  }

  getDevice(hub: string, deviceId: string): HubDevice | undefined {
    const device = this.#devices.get(key(hub, deviceId));
    return device ? structuredClone(device) : undefined;
  }

  putDevice(device: HubDevice): void {
    this.#devices.set(key(device.identity.hub, device.identity.deviceId), structuredClone(device));
  }

  deleteDevice(hub: string, deviceId: string): boolean {
    this.#c2d.delete(key(hub, deviceId));
    this.#modules.delete(key(hub, deviceId));
    return this.#devices.delete(key(hub, deviceId));
  }

  getModule(hub: string, deviceId: string, moduleId: string): HubModule | undefined {
    const module = this.#modules.get(key(hub, deviceId))?.get(moduleId);
    return module ? structuredClone(module) : undefined;
  }

  putModule(module: HubModule): void {
    const deviceKey = key(module.identity.hub, module.identity.deviceId);
    const modules = this.#modules.get(deviceKey) ?? new Map<string, HubModule>();
    modules.set(module.identity.moduleId, structuredClone(module));
    this.#modules.set(deviceKey, modules);
  }

  deleteModule(hub: string, deviceId: string, moduleId: string): boolean {
    return this.#modules.get(key(hub, deviceId))?.delete(moduleId) ?? false;
  }

  modulesOf(hub: string, deviceId: string): HubModule[] {
    return [...(this.#modules.get(key(hub, deviceId))?.values() ?? [])]
      .sort((a, b) => (a.identity.moduleId < b.identity.moduleId ? -1 : 1))
      .map((m) => structuredClone(m));
  }

  modulesAfter(hub: string, after: readonly [string, string] | undefined, limit: number): HubModule[] {
    const order = (m: HubModule): [string, string] => [m.identity.deviceId, m.identity.moduleId];
    const before = (a: readonly [string, string], b: readonly [string, string]) =>
      a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    return [...this.#modules.values()]
      .flatMap((modules) => [...modules.values()])
      .filter((m) => m.identity.hub.toLowerCase() === hub.toLowerCase() && (!after || before(after, order(m))))
      .sort((a, b) => (before(order(a), order(b)) ? -1 : 1))
      .slice(0, limit)
      .map((m) => structuredClone(m));
  }

  c2dMessages(hub: string, deviceId: string): QueuedC2d[] {
    return (this.#c2d.get(key(hub, deviceId)) ?? []).map(copyC2d);
  }

  putC2d(message: QueuedC2d): void {
    const queue = this.#c2d.get(key(message.hub, message.deviceId)) ?? [];
    const at = queue.findIndex((m) => m.seq === message.seq);
    if (at >= 0) queue[at] = copyC2d(message);
    else queue.push(copyC2d(message));
    queue.sort((a, b) => a.seq - b.seq);
    this.#c2d.set(key(message.hub, message.deviceId), queue);
  }

  deleteC2d(hub: string, deviceId: string, seq: number): void {
    const queue = this.#c2d.get(key(hub, deviceId));
    if (queue)
      this.#c2d.set(
        key(hub, deviceId),
        queue.filter((m) => m.seq !== seq),
      );
  }

  addC2dFeedback(hub: string, record: C2dFeedbackRecord): void {
    this.#feedback.push({ seq: ++this.#feedbackSeq, hub: hub.toLowerCase(), record: structuredClone(record) });
    if (this.#feedback.length > MAX_C2D_FEEDBACK_KEPT)
      this.#feedback.splice(0, this.#feedback.length - MAX_C2D_FEEDBACK_KEPT);
  }

  takeC2dFeedback(hub: string, holder: string, limit: number): QueuedC2dFeedback[] {
    const taken = this.#feedback.filter((f) => f.hub === hub.toLowerCase() && f.holder === undefined).slice(0, limit);
    for (const f of taken) f.holder = holder;
    return taken.map((f) => ({ seq: f.seq, record: structuredClone(f.record) }));
  }

  settleC2dFeedback(seqs: readonly number[], complete: boolean): void {
    for (const seq of seqs) {
      const at = this.#feedback.findIndex((f) => f.seq === seq);
      if (at < 0) continue;
      if (complete) this.#feedback.splice(at, 1);
      else delete this.#feedback[at]?.holder;
    }
  }

  releaseC2dFeedback(holder: string): void {
    for (const f of this.#feedback) if (f.holder === holder) delete f.holder;
  }

  c2dLockedTo(connection: string | undefined): QueuedC2d[] {
    return [...this.#c2d.values()]
      .flat()
      .filter((m) => m.lock?.connection !== undefined && (connection === undefined || m.lock.connection === connection))
      .map(copyC2d);
  }

  listDevices(hub?: string): HubDevice[] {
    return [...this.#devices.values()]
      .filter((d) => hub === undefined || d.identity.hub.toLowerCase() === hub.toLowerCase())
      .map((d) => structuredClone(d));
  }

  devicesAfter(hub: string, afterDeviceId: string | undefined, limit: number): HubDevice[] {
    return this.listDevices(hub)
      .filter((d) => afterDeviceId === undefined || d.identity.deviceId > afterDeviceId)
      .sort((a, b) => (a.identity.deviceId < b.identity.deviceId ? -1 : 1))
      .slice(0, limit);
  }

  deviceStatistics(hub: string): { total: number; enabled: number } {
    const devices = this.listDevices(hub);
    return { total: devices.length, enabled: devices.filter((d) => d.identity.status === 'enabled').length };
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  addTelemetry(message: TelemetryRecord, event?: HubEventFields): void {
    const stored = structuredClone(message);
    if (event) {
      const events = this.#partition(message.hub, event.partition);
      const last = events[events.length - 1];
      const offset = last?.nextOffset ?? 0;
      this.#events.set(stored, {
        ...event,
        hub: stored.hub,
        deviceId: stored.deviceId,
        ...(stored.moduleId !== undefined ? { moduleId: stored.moduleId } : {}),
        body: stored.body,
        properties: stored.properties,
        sequenceNumber: last ? last.sequenceNumber + 1 : 0,
        offset,
        nextOffset: offset + eventBytes(stored.body),
      });
    }
    this.#telemetry.push(stored);
    // Kept: the hub's newest MAX_TELEMETRY_KEPT and each device's newest MAX_TELEMETRY_PER_DEVICE.
    const hub = message.hub.toLowerCase();
    const ofHub = this.#telemetry.filter((m) => m.hub.toLowerCase() === hub);
    const keep = new Set(ofHub.slice(-MAX_TELEMETRY_KEPT));
    const perDevice = new Map<string, number>();
    for (const m of [...ofHub].reverse()) {
      const device = m.deviceId;
      const seen = perDevice.get(device) ?? 0;
      if (seen < MAX_TELEMETRY_PER_DEVICE) keep.add(m);
      perDevice.set(device, seen + 1);
    }
    for (const m of ofHub) if (!keep.has(m)) this.#telemetry.splice(this.#telemetry.indexOf(m), 1);
  }

  telemetry(hub: string, deviceId?: string, newest?: number): TelemetryRecord[] {
    const matching = this.#telemetry.filter(
      (m) => m.hub.toLowerCase() === hub.toLowerCase() && (deviceId === undefined || m.deviceId === deviceId),
    );
    return (newest === undefined ? matching : matching.slice(Math.max(0, matching.length - newest))).map((m) => ({
      ...structuredClone(m),
      // structuredClone turns a Buffer into a plain Uint8Array.
      body: Buffer.from(m.body),
    }));
  }
}

function copyC2d(message: QueuedC2d): QueuedC2d {
  return { ...structuredClone({ ...message, body: undefined }), body: Buffer.from(message.body) };
}

function key(hub: string, deviceId: string): string {
  return `${hub.toLowerCase()}\n${deviceId}`;
}

/**
 * How far an event moves its partition's offset: its body's bytes, at least one (Event Hubs'
 * offsets count the bytes before an event; two empty events still get offsets of their own).
 */
export function eventBytes(body: Buffer): number {
  return Math.max(1, body.length);
}
