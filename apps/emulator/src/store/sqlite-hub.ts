import type Database from 'better-sqlite3';
import {
  type C2dFeedbackRecord,
  MAX_C2D_FEEDBACK_KEPT,
  type QueuedC2d,
  type QueuedC2dFeedback,
} from '../hub/core/c2d.js';
import {
  type HubEventFields,
  type PartitionState,
  partitionStateOf,
  type StoredHubEvent,
} from '../hub/core/eventhub.js';
import type { HubDevice } from '../hub/core/identity.js';
import type { HubModule } from '../hub/core/modules.js';
import {
  type ChangedHubDevice,
  eventBytes,
  type HubChangeFeed,
  type HubStore,
  MAX_TELEMETRY_KEPT,
  MAX_TELEMETRY_PER_DEVICE,
  type TelemetryRecord,
} from '../hub/core/store.js';

interface DeviceRow {
  device_json: string;
}

interface ChangedDeviceRow extends DeviceRow {
  change_seq: number;
  module_count: number;
  modules_connected: number;
}

interface C2dRow {
  message_json: string;
  body: Buffer;
}

interface EventRow {
  hub: string;
  partition: number;
  partition_seq: number;
  byte_offset: number;
  enqueued_ms: number;
  device_id: string;
  auth_type: string;
  generation_id: string;
  body: Buffer;
  properties_json: string;
  module_id: string | null;
}

interface TelemetryRow {
  hub: string;
  device_id: string;
  body: Buffer;
  properties_json: string;
  module_id: string | null;
  transport: string;
  received_utc: string;
}

/**
 * What the change feed reads of a device row (`d`): its record, its change seq, and how many modules
 * it has and how many of them are connected (the primary key's range of `hub_modules`: at most 20 rows).
 */
const CHANGED_COLUMNS = `device_json, change_seq,
  (SELECT count(*) FROM hub_modules m WHERE m.hub_key = d.hub_key AND m.device_key = d.device_key) AS module_count,
  (SELECT count(*) FROM hub_modules m WHERE m.hub_key = d.hub_key AND m.device_key = d.device_key
     AND json_extract(m.module_json, '$.connectionState') = 'Connected') AS modules_connected`;

/**
 * The emulated hubs' state in the emulator's SQLite database (tables `hub_devices`,
 * `hub_telemetry`, created by `SqliteStore`'s migrations): another process on the same state
 * folder sees every identity, twin and message at once. Keyed as IoT Hub names them: the hub by
 * its host name in lower case (DNS names have no case), the device by its id as it is (IoT Hub
 * device ids are case-sensitive; `device_key` is the id itself since the migration that made it so).
 */
export class SqliteHubStore implements HubStore, HubChangeFeed {
  readonly #db: Database.Database;
  readonly #statements;
  /**
   * Runs a function in an IMMEDIATE transaction (a savepoint when one is open). Built once:
   * `db.transaction` wraps its function anew on every call (~3 % of the hub's CPU per message).
   */
  readonly #immediate: (fn: () => unknown) => unknown;

  constructor(
    db: Database.Database,
    readonly path: string,
  ) {
    this.#db = db;
    this.#immediate = db.transaction((fn: () => unknown) => fn()).immediate;
    this.#statements = {
      get: db.prepare<[string, string], DeviceRow>(
        'SELECT device_json FROM hub_devices WHERE hub_key = ? AND device_key = ?',
      ),
      // Every write takes the next change seq (writers are serialized by SQLite, across processes too).
      // Positional parameters: on every assignment's path (see SqliteStore's put).
      put: db.prepare<[hubKey: string, deviceKey: string, hub: string, deviceId: string, json: string]>(
        `INSERT INTO hub_devices (hub_key, device_key, hub, device_id, device_json, change_seq)
         VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(change_seq), 0) + 1 FROM hub_devices))
         ON CONFLICT (hub_key, device_key) DO UPDATE SET hub = excluded.hub, device_id = excluded.device_id,
           device_json = excluded.device_json, change_seq = excluded.change_seq`,
      ),
      getChanged: db.prepare<[string, string], ChangedDeviceRow>(
        `SELECT ${CHANGED_COLUMNS} FROM hub_devices d WHERE hub_key = ? AND device_key = ?`,
      ),
      changedAfter: db.prepare<[number, number], ChangedDeviceRow>(
        `SELECT ${CHANGED_COLUMNS} FROM hub_devices d WHERE change_seq > ? ORDER BY change_seq LIMIT ?`,
      ),
      latestChanged: db.prepare<[string, number], ChangedDeviceRow>(
        `SELECT ${CHANGED_COLUMNS} FROM hub_devices d WHERE hub_key = ? ORDER BY change_seq DESC LIMIT ?`,
      ),
      // A module's write is its device's change for the change feed (the web view lists a device's
      // modules): the device row takes the next change seq, its JSON untouched.
      touchDevice: db.prepare<[string, string]>(
        `UPDATE hub_devices SET change_seq = (SELECT coalesce(max(change_seq), 0) + 1 FROM hub_devices)
         WHERE hub_key = ? AND device_key = ?`,
      ),
      latestChange: db.prepare<[], { seq: number | null }>('SELECT max(change_seq) AS seq FROM hub_devices'),
      counts: db.prepare<[], { hub_key: string; count: number }>(
        'SELECT hub_key, count(*) AS count FROM hub_devices GROUP BY hub_key',
      ),
      delete: db.prepare<[string, string]>('DELETE FROM hub_devices WHERE hub_key = ? AND device_key = ?'),
      getModule: db.prepare<[string, string, string], { module_json: string }>(
        'SELECT module_json FROM hub_modules WHERE hub_key = ? AND device_key = ? AND module_key = ?',
      ),
      putModule: db.prepare<[string, string, string, string]>(
        `INSERT INTO hub_modules (hub_key, device_key, module_key, module_json) VALUES (?, ?, ?, ?)
         ON CONFLICT (hub_key, device_key, module_key) DO UPDATE SET module_json = excluded.module_json`,
      ),
      deleteModule: db.prepare<[string, string, string]>(
        'DELETE FROM hub_modules WHERE hub_key = ? AND device_key = ? AND module_key = ?',
      ),
      modulesOf: db.prepare<[string, string], { module_json: string }>(
        'SELECT module_json FROM hub_modules WHERE hub_key = ? AND device_key = ? ORDER BY module_key',
      ),
      deleteModulesOf: db.prepare<[string, string]>('DELETE FROM hub_modules WHERE hub_key = ? AND device_key = ?'),
      // The primary key's order (hub_key, device_key, module_key): a batch is a range of its index.
      modulesFirst: db.prepare<[string, number], { module_json: string }>(
        'SELECT module_json FROM hub_modules WHERE hub_key = ? ORDER BY device_key, module_key LIMIT ?',
      ),
      modulesAfter: db.prepare<[string, string, string, number], { module_json: string }>(
        `SELECT module_json FROM hub_modules WHERE hub_key = ? AND (device_key, module_key) > (?, ?)
         ORDER BY device_key, module_key LIMIT ?`,
      ),
      // A device's cloud-to-device queue (at most 50 rows), kept as JSON beside its body.
      c2dOfDevice: db.prepare<[string, string], C2dRow>(
        'SELECT message_json, body FROM hub_c2d WHERE hub_key = ? AND device_key = ? ORDER BY seq',
      ),
      putC2d: db.prepare<[string, string, number, string | null, string, Buffer]>(
        `INSERT INTO hub_c2d (hub_key, device_key, seq, lock_connection, message_json, body) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (hub_key, device_key, seq) DO UPDATE SET lock_connection = excluded.lock_connection,
           message_json = excluded.message_json, body = excluded.body`,
      ),
      deleteC2d: db.prepare<[string, string, number]>(
        'DELETE FROM hub_c2d WHERE hub_key = ? AND device_key = ? AND seq = ?',
      ),
      deleteC2dOfDevice: db.prepare<[string, string]>('DELETE FROM hub_c2d WHERE hub_key = ? AND device_key = ?'),
      c2dLockedTo: db.prepare<[string], C2dRow>(
        'SELECT message_json, body FROM hub_c2d WHERE lock_connection = ? ORDER BY hub_key, device_key, seq',
      ),
      addFeedback: db.prepare<[string, string]>('INSERT INTO hub_c2d_feedback (hub_key, record_json) VALUES (?, ?)'),
      pruneFeedback: db.prepare<[number]>(
        'DELETE FROM hub_c2d_feedback WHERE seq <= (SELECT max(seq) FROM hub_c2d_feedback) - ?',
      ),
      takeFeedback: db.prepare<[string, string, number], { seq: number; record_json: string }>(
        `UPDATE hub_c2d_feedback SET holder = ? WHERE seq IN (
           SELECT seq FROM hub_c2d_feedback WHERE hub_key = ? AND holder IS NULL ORDER BY seq LIMIT ?)
         RETURNING seq, record_json`,
      ),
      completeFeedback: db.prepare<[number]>('DELETE FROM hub_c2d_feedback WHERE seq = ?'),
      unlockFeedback: db.prepare<[number]>('UPDATE hub_c2d_feedback SET holder = NULL WHERE seq = ?'),
      releaseFeedback: db.prepare<[string]>('UPDATE hub_c2d_feedback SET holder = NULL WHERE holder = ?'),
      c2dLockedToAny: db.prepare<[], C2dRow>(
        'SELECT message_json, body FROM hub_c2d WHERE lock_connection IS NOT NULL ORDER BY hub_key, device_key, seq',
      ),
      listAll: db.prepare<[], DeviceRow>('SELECT device_json FROM hub_devices ORDER BY hub_key, device_key'),
      listHub: db.prepare<[string], DeviceRow>(
        'SELECT device_json FROM hub_devices WHERE hub_key = ? ORDER BY device_key',
      ),
      // The primary key's order (hub_key, device_key): a batch is a range of its index.
      listAfter: db.prepare<[string, string, number], DeviceRow>(
        'SELECT device_json FROM hub_devices WHERE hub_key = ? AND device_key > ? ORDER BY device_key LIMIT ?',
      ),
      listFirst: db.prepare<[string, number], DeviceRow>(
        'SELECT device_json FROM hub_devices WHERE hub_key = ? ORDER BY device_key LIMIT ?',
      ),
      // Counted without parsing the devices' JSON in JavaScript.
      statistics: db.prepare<[string], { total: number; enabled: number | null }>(
        `SELECT count(*) AS total, sum(json_extract(device_json, '$.identity.status') = 'enabled') AS enabled
         FROM hub_devices WHERE hub_key = ?`,
      ),
      // The message takes the next number of its hub and of its device (writers are serialized).
      addTelemetry: db.prepare<
        {
          hubKey: string;
          deviceKey: string;
          hub: string;
          deviceId: string;
          body: Buffer;
          properties: string;
          moduleId: string | null;
          transport: string;
          receivedUtc: string;
          partition: number | null;
          size: number;
          enqueuedMs: number | null;
          authType: string | null;
          generationId: string | null;
        },
        { hub_seq: number; device_seq: number }
      >(
        // With a partition, the message is also the built-in endpoint's event: the next number of
        // its partition, its offset the partition's last event's next_offset (index seeks: a
        // partition's newest message is its device's newest, which the pruning below always keeps).
        `INSERT INTO hub_telemetry (hub_key, device_key, hub_seq, device_seq, hub, device_id, body, properties_json, transport, received_utc,
           partition, partition_seq, byte_offset, next_offset, enqueued_ms, auth_type, generation_id, module_id)
         SELECT @hubKey, @deviceKey,
           (SELECT coalesce(max(hub_seq), 0) + 1 FROM hub_telemetry WHERE hub_key = @hubKey),
           (SELECT coalesce(max(device_seq), 0) + 1 FROM hub_telemetry WHERE hub_key = @hubKey AND device_key = @deviceKey),
           @hub, @deviceId, @body, @properties, @transport, @receivedUtc,
           @partition,
           CASE WHEN @partition IS NULL THEN NULL ELSE coalesce(last.partition_seq + 1, 0) END,
           CASE WHEN @partition IS NULL THEN NULL ELSE coalesce(last.next_offset, 0) END,
           CASE WHEN @partition IS NULL THEN NULL ELSE coalesce(last.next_offset, 0) + @size END,
           @enqueuedMs, @authType, @generationId, @moduleId
         FROM (SELECT 1) LEFT JOIN (SELECT partition_seq, next_offset FROM hub_telemetry
                                    WHERE hub_key = @hubKey AND partition = @partition
                                    ORDER BY partition_seq DESC LIMIT 1) last
         RETURNING hub_seq, device_seq`,
      ),
      // After a message numbered (hubSeq, deviceSeq): the one message that has just left the hub's
      // newest MAX_TELEMETRY_KEPT goes unless it is among its device's newest MAX_TELEMETRY_PER_DEVICE,
      // and the one that has just left the device's newest goes unless it is among the hub's newest.
      // No other message changed either standing. (The newest of a window are all kept, so numbers
      // count them without gaps: the hub's newest N are those numbered above hubSeq - N. That holds
      // only while this is the one place that deletes telemetry: a device's deletion keeps its
      // messages, as IoT Hub's event stream does, and so does the memory store.)
      prune: db.prepare<{
        hubKey: string;
        deviceKey: string;
        hubSeq: number;
        deviceSeq: number;
        hubKept: number;
        deviceKept: number;
      }>(
        `DELETE FROM hub_telemetry WHERE id IN (
           SELECT m.id FROM hub_telemetry m WHERE m.hub_key = @hubKey AND m.hub_seq = @hubSeq - @hubKept
             AND m.device_seq <= (SELECT max(d.device_seq) FROM hub_telemetry d
                                  WHERE d.hub_key = @hubKey AND d.device_key = m.device_key) - @deviceKept
           UNION ALL
           SELECT m.id FROM hub_telemetry m WHERE m.hub_key = @hubKey AND m.device_key = @deviceKey
             AND m.device_seq = @deviceSeq - @deviceKept AND m.hub_seq <= @hubSeq - @hubKept)`,
      ),
      eventsFrom: db.prepare<[string, number, number, number], EventRow>(
        `SELECT hub, partition, partition_seq, byte_offset, enqueued_ms, device_id, auth_type, generation_id, body, properties_json, module_id
         FROM hub_telemetry WHERE hub_key = ? AND partition = ? AND partition_seq >= ? ORDER BY partition_seq LIMIT ?`,
      ),
      firstEvent: db.prepare<[string, number], { seq: number }>(
        'SELECT partition_seq AS seq FROM hub_telemetry WHERE hub_key = ? AND partition = ? ORDER BY partition_seq LIMIT 1',
      ),
      lastEvent: db.prepare<[string, number], { seq: number; byte_offset: number; enqueued_ms: number }>(
        `SELECT partition_seq AS seq, byte_offset, enqueued_ms FROM hub_telemetry
         WHERE hub_key = ? AND partition = ? ORDER BY partition_seq DESC LIMIT 1`,
      ),
      firstAboveOffset: db.prepare<[string, number, number], { seq: number }>(
        `SELECT partition_seq AS seq FROM hub_telemetry
         WHERE hub_key = ? AND partition = ? AND byte_offset > ? ORDER BY partition_seq LIMIT 1`,
      ),
      firstAfterTime: db.prepare<[string, number, number], { seq: number }>(
        `SELECT partition_seq AS seq FROM hub_telemetry
         WHERE hub_key = ? AND partition = ? AND enqueued_ms > ? ORDER BY partition_seq LIMIT 1`,
      ),
      telemetryOfHub: db.prepare<[string], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? ORDER BY hub_seq',
      ),
      telemetryOfDevice: db.prepare<[string, string], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? AND device_key = ? ORDER BY device_seq',
      ),
      newestOfDevice: db.prepare<[string, string, number], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? AND device_key = ? ORDER BY device_seq DESC LIMIT ?',
      ),
    };
  }

  getDevice(hub: string, deviceId: string): HubDevice | undefined {
    const row = this.#statements.get.get(hub.toLowerCase(), deviceId);
    return row ? this.#parse(row) : undefined;
  }

  putDevice(device: HubDevice): void {
    const { hub, deviceId } = device.identity;
    this.#statements.put.run(hub.toLowerCase(), deviceId, hub, deviceId, JSON.stringify(device));
  }

  deleteDevice(hub: string, deviceId: string): boolean {
    this.#statements.deleteC2dOfDevice.run(hub.toLowerCase(), deviceId);
    this.#statements.deleteModulesOf.run(hub.toLowerCase(), deviceId);
    return this.#statements.delete.run(hub.toLowerCase(), deviceId).changes > 0;
  }

  getModule(hub: string, deviceId: string, moduleId: string): HubModule | undefined {
    const row = this.#statements.getModule.get(hub.toLowerCase(), deviceId, moduleId);
    return row ? this.#parseModule(row.module_json) : undefined;
  }

  putModule(module: HubModule): void {
    const { hub, deviceId, moduleId } = module.identity;
    this.#statements.putModule.run(hub.toLowerCase(), deviceId, moduleId, JSON.stringify(module));
    this.#statements.touchDevice.run(hub.toLowerCase(), deviceId);
  }

  deleteModule(hub: string, deviceId: string, moduleId: string): boolean {
    const deleted = this.#statements.deleteModule.run(hub.toLowerCase(), deviceId, moduleId).changes > 0;
    if (deleted) this.#statements.touchDevice.run(hub.toLowerCase(), deviceId);
    return deleted;
  }

  modulesOf(hub: string, deviceId: string): HubModule[] {
    return this.#statements.modulesOf.all(hub.toLowerCase(), deviceId).map((row) => this.#parseModule(row.module_json));
  }

  modulesAfter(hub: string, after: readonly [string, string] | undefined, limit: number): HubModule[] {
    const rows = after
      ? this.#statements.modulesAfter.all(hub.toLowerCase(), after[0], after[1], limit)
      : this.#statements.modulesFirst.all(hub.toLowerCase(), limit);
    return rows.map((row) => this.#parseModule(row.module_json));
  }

  #parseModule(json: string): HubModule {
    const module = JSON.parse(json) as HubModule;
    if (typeof module?.identity?.moduleId !== 'string' || typeof module.twin?.version !== 'number') {
      throw new Error(`a hub module in ${this.path} has an invalid record`);
    }
    return module;
  }

  c2dMessages(hub: string, deviceId: string): QueuedC2d[] {
    return this.#statements.c2dOfDevice.all(hub.toLowerCase(), deviceId).map((row) => this.#parseC2d(row));
  }

  putC2d(message: QueuedC2d): void {
    const { body, ...rest } = message;
    this.#statements.putC2d.run(
      message.hub.toLowerCase(),
      message.deviceId,
      message.seq,
      message.lock?.connection ?? null,
      JSON.stringify(rest),
      body,
    );
  }

  deleteC2d(hub: string, deviceId: string, seq: number): void {
    this.#statements.deleteC2d.run(hub.toLowerCase(), deviceId, seq);
  }

  addC2dFeedback(hub: string, record: C2dFeedbackRecord): void {
    this.#statements.addFeedback.run(hub.toLowerCase(), JSON.stringify(record));
    this.#statements.pruneFeedback.run(MAX_C2D_FEEDBACK_KEPT);
  }

  takeC2dFeedback(hub: string, holder: string, limit: number): QueuedC2dFeedback[] {
    return this.transaction(() =>
      this.#statements.takeFeedback
        .all(holder, hub.toLowerCase(), limit)
        .map((row) => ({ seq: row.seq, record: JSON.parse(row.record_json) as C2dFeedbackRecord }))
        .sort((a, b) => a.seq - b.seq),
    );
  }

  settleC2dFeedback(seqs: readonly number[], complete: boolean): void {
    this.transaction(() => {
      for (const seq of seqs) (complete ? this.#statements.completeFeedback : this.#statements.unlockFeedback).run(seq);
    });
  }

  releaseC2dFeedback(holder: string): void {
    this.#statements.releaseFeedback.run(holder);
  }

  c2dLockedTo(connection: string | undefined): QueuedC2d[] {
    const rows =
      connection === undefined ? this.#statements.c2dLockedToAny.all() : this.#statements.c2dLockedTo.all(connection);
    return rows.map((row) => this.#parseC2d(row));
  }

  #parseC2d(row: C2dRow): QueuedC2d {
    const message = JSON.parse(row.message_json) as Omit<QueuedC2d, 'body'>;
    if (typeof message?.deviceId !== 'string' || typeof message.seq !== 'number') {
      throw new Error(`a cloud-to-device message in ${this.path} has an invalid record`);
    }
    return { ...message, body: Buffer.from(row.body) };
  }

  listDevices(hub?: string): HubDevice[] {
    const rows = hub === undefined ? this.#statements.listAll.all() : this.#statements.listHub.all(hub.toLowerCase());
    return rows.map((row) => this.#parse(row));
  }

  devicesAfter(hub: string, afterDeviceId: string | undefined, limit: number): HubDevice[] {
    const rows =
      afterDeviceId === undefined
        ? this.#statements.listFirst.all(hub.toLowerCase(), limit)
        : this.#statements.listAfter.all(hub.toLowerCase(), afterDeviceId, limit);
    return rows.map((row) => this.#parse(row));
  }

  deviceStatistics(hub: string): { total: number; enabled: number } {
    const row = this.#statements.statistics.get(hub.toLowerCase());
    return { total: row?.total ?? 0, enabled: row?.enabled ?? 0 };
  }

  transaction<T>(fn: () => T): T {
    return this.#immediate(fn) as T;
  }

  addTelemetry(message: TelemetryRecord, event?: HubEventFields): void {
    const hubKey = message.hub.toLowerCase();
    const deviceKey = message.deviceId;
    const statements = this.#statements;
    const write = () => {
      const numbered = statements.addTelemetry.get({
        hubKey,
        deviceKey,
        hub: message.hub,
        deviceId: message.deviceId,
        body: message.body,
        properties: JSON.stringify(message.properties),
        moduleId: message.moduleId ?? null,
        transport: message.transport,
        receivedUtc: message.receivedUtc,
        partition: event?.partition ?? null,
        size: eventBytes(message.body),
        enqueuedMs: event?.enqueuedMs ?? null,
        authType: event?.authenticationType ?? null,
        generationId: event?.generationId ?? null,
      }) as { hub_seq: number; device_seq: number };
      // Kept: the hub's newest MAX_TELEMETRY_KEPT and each device's newest MAX_TELEMETRY_PER_DEVICE.
      statements.prune.run({
        hubKey,
        deviceKey,
        hubSeq: numbered.hub_seq,
        deviceSeq: numbered.device_seq,
        hubKept: MAX_TELEMETRY_KEPT,
        deviceKept: MAX_TELEMETRY_PER_DEVICE,
      });
    };
    // Its own transaction, or its caller's as it is (receiveTelemetry's, with the device's write):
    // a savepoint would only add SAVEPOINT, RELEASE and a sub-journal copy of each page it changes,
    // and what throws here fails the caller's transaction (or its savepoint) with it: nobody catches it inside.
    if (this.#db.inTransaction) write();
    else this.transaction(write);
  }

  eventsFrom(hub: string, partition: number, from: number, limit: number): StoredHubEvent[] {
    return this.#statements.eventsFrom.all(hub.toLowerCase(), partition, from, limit).map((row) => ({
      hub: row.hub,
      partition: row.partition,
      sequenceNumber: row.partition_seq,
      offset: row.byte_offset,
      enqueuedMs: row.enqueued_ms,
      deviceId: row.device_id,
      authenticationType: row.auth_type,
      generationId: row.generation_id,
      body: Buffer.from(row.body),
      properties: readTelemetryProperties(row.properties_json),
      ...(row.module_id !== null ? { moduleId: row.module_id } : {}),
    }));
  }

  partitionState(hub: string, partition: number): PartitionState {
    const hubKey = hub.toLowerCase();
    const first = this.#statements.firstEvent.get(hubKey, partition);
    const last = this.#statements.lastEvent.get(hubKey, partition);
    return partitionStateOf(
      first && { sequenceNumber: first.seq },
      last && { sequenceNumber: last.seq, offset: last.byte_offset, enqueuedMs: last.enqueued_ms },
    );
  }

  firstSequenceWhere(
    hub: string,
    partition: number,
    where: { offset: number; inclusive: boolean } | { enqueuedAfterMs: number },
  ): number | undefined {
    const hubKey = hub.toLowerCase();
    const row =
      'offset' in where
        ? this.#statements.firstAboveOffset.get(hubKey, partition, where.inclusive ? where.offset - 1 : where.offset)
        : this.#statements.firstAfterTime.get(hubKey, partition, where.enqueuedAfterMs);
    return row?.seq;
  }

  telemetry(hub: string, deviceId?: string, newest?: number): TelemetryRecord[] {
    const hubKey = hub.toLowerCase();
    let rows: TelemetryRow[];
    if (deviceId === undefined) {
      rows = this.#statements.telemetryOfHub.all(hubKey);
      if (newest !== undefined) rows = rows.slice(Math.max(0, rows.length - newest));
    } else if (newest === undefined) {
      rows = this.#statements.telemetryOfDevice.all(hubKey, deviceId);
    } else {
      rows = this.#statements.newestOfDevice.all(hubKey, deviceId, newest).reverse();
    }
    return rows.map((row) => ({
      hub: row.hub,
      deviceId: row.device_id,
      ...(row.module_id !== null ? { moduleId: row.module_id } : {}),
      properties: readTelemetryProperties(row.properties_json),
      body: Buffer.from(row.body),
      transport: row.transport === 'https' || row.transport === 'amqp' ? row.transport : 'mqtt',
      receivedUtc: row.received_utc,
    }));
  }

  devicesChangedAfter(afterSeq: number, limit: number): ChangedHubDevice[] {
    return this.#statements.changedAfter.all(afterSeq, limit).map((row) => this.#changed(row));
  }

  changedDevice(hub: string, deviceId: string): ChangedHubDevice | undefined {
    const row = this.#statements.getChanged.get(hub.toLowerCase(), deviceId);
    return row ? this.#changed(row) : undefined;
  }

  latestChangedDevices(hub: string, limit: number): ChangedHubDevice[] {
    return this.#statements.latestChanged.all(hub.toLowerCase(), limit).map((row) => this.#changed(row));
  }

  latestDeviceChange(): number {
    return this.#statements.latestChange.get()?.seq ?? 0;
  }

  deviceCounts(): Map<string, number> {
    return new Map(this.#statements.counts.all().map((row) => [row.hub_key, row.count]));
  }

  #changed(row: ChangedDeviceRow): ChangedHubDevice {
    const changed: ChangedHubDevice = { seq: row.change_seq, device: this.#parse(row) };
    if (row.module_count > 0) changed.modules = { count: row.module_count, connected: row.modules_connected };
    return changed;
  }

  #parse(row: DeviceRow): HubDevice {
    const device = JSON.parse(row.device_json) as HubDevice;
    if (typeof device?.identity?.deviceId !== 'string' || typeof device.twin?.version !== 'number') {
      throw new Error(`a hub device in ${this.path} has an invalid record`);
    }
    return device;
  }
}

/** A message's properties as `properties_json` keeps them (an object of strings; the module id has its column). */
function readTelemetryProperties(json: string): Record<string, string> {
  return JSON.parse(json) as Record<string, string>;
}
