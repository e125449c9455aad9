import type Database from 'better-sqlite3';
import type { HubDevice } from '../hub/core/identity.js';
import {
  type ChangedHubDevice,
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
}

interface TelemetryRow {
  hub: string;
  device_id: string;
  body: Buffer;
  properties_json: string;
  transport: string;
  received_utc: string;
}

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

  constructor(
    db: Database.Database,
    readonly path: string,
  ) {
    this.#db = db;
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
        'SELECT device_json, change_seq FROM hub_devices WHERE hub_key = ? AND device_key = ?',
      ),
      changedAfter: db.prepare<[number, number], ChangedDeviceRow>(
        'SELECT device_json, change_seq FROM hub_devices WHERE change_seq > ? ORDER BY change_seq LIMIT ?',
      ),
      latestChanged: db.prepare<[string, number], ChangedDeviceRow>(
        'SELECT device_json, change_seq FROM hub_devices WHERE hub_key = ? ORDER BY change_seq DESC LIMIT ?',
      ),
      latestChange: db.prepare<[], { seq: number | null }>('SELECT max(change_seq) AS seq FROM hub_devices'),
      counts: db.prepare<[], { hub_key: string; count: number }>(
        'SELECT hub_key, count(*) AS count FROM hub_devices GROUP BY hub_key',
      ),
      delete: db.prepare<[string, string]>('DELETE FROM hub_devices WHERE hub_key = ? AND device_key = ?'),
      listAll: db.prepare<[], DeviceRow>('SELECT device_json FROM hub_devices ORDER BY hub_key, device_key'),
      listHub: db.prepare<[string], DeviceRow>(
        'SELECT device_json FROM hub_devices WHERE hub_key = ? ORDER BY device_key',
      ),
      addTelemetry: db.prepare(
        `INSERT INTO hub_telemetry (hub_key, device_key, hub, device_id, body, properties_json, transport, received_utc)
         VALUES (@hubKey, @deviceKey, @hub, @deviceId, @body, @properties, @transport, @receivedUtc)`,
      ),
      // The message that has just left the hub's newest MAX_TELEMETRY_KEPT (every message leaves
      // through this place once): gone, unless it is among its device's newest.
      hubOverflow: db.prepare<{ hubKey: string; hubKept: number }, { id: number; device_key: string }>(
        'SELECT id, device_key FROM hub_telemetry WHERE hub_key = @hubKey ORDER BY id DESC LIMIT 1 OFFSET @hubKept',
      ),
      deviceNewerCount: db.prepare<
        { hubKey: string; deviceKey: string; id: number; deviceKept: number },
        { n: number }
      >(
        `SELECT count(*) AS n FROM (SELECT 1 FROM hub_telemetry WHERE hub_key = @hubKey AND device_key = @deviceKey AND id > @id
           LIMIT @deviceKept)`,
      ),
      deleteTelemetry: db.prepare<[number]>('DELETE FROM hub_telemetry WHERE id = ?'),
      // The device's messages past its newest MAX_TELEMETRY_PER_DEVICE that have left the hub's newest too.
      pruneDeviceTelemetry: db.prepare<{ hubKey: string; deviceKey: string; deviceKept: number; hubLimitId: number }>(
        `DELETE FROM hub_telemetry WHERE hub_key = @hubKey AND device_key = @deviceKey AND id <= @hubLimitId AND id <= (
           SELECT id FROM hub_telemetry WHERE hub_key = @hubKey AND device_key = @deviceKey ORDER BY id DESC LIMIT 1 OFFSET @deviceKept)`,
      ),
      telemetryOfHub: db.prepare<[string], TelemetryRow>('SELECT * FROM hub_telemetry WHERE hub_key = ? ORDER BY id'),
      telemetryOfDevice: db.prepare<[string, string], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? AND device_key = ? ORDER BY id',
      ),
      newestOfDevice: db.prepare<[string, string, number], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? AND device_key = ? ORDER BY id DESC LIMIT ?',
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
    return this.#statements.delete.run(hub.toLowerCase(), deviceId).changes > 0;
  }

  listDevices(hub?: string): HubDevice[] {
    const rows = hub === undefined ? this.#statements.listAll.all() : this.#statements.listHub.all(hub.toLowerCase());
    return rows.map((row) => this.#parse(row));
  }

  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  addTelemetry(message: TelemetryRecord): void {
    const hubKey = message.hub.toLowerCase();
    const deviceKey = message.deviceId;
    const statements = this.#statements;
    this.transaction(() => {
      statements.addTelemetry.run({
        hubKey,
        deviceKey,
        hub: message.hub,
        deviceId: message.deviceId,
        body: message.body,
        properties: JSON.stringify(message.properties),
        transport: message.transport,
        receivedUtc: message.receivedUtc,
      });
      // Kept: the hub's newest MAX_TELEMETRY_KEPT and each device's newest MAX_TELEMETRY_PER_DEVICE.
      const overflow = statements.hubOverflow.get({ hubKey, hubKept: MAX_TELEMETRY_KEPT });
      if (!overflow) return;
      const newer = statements.deviceNewerCount.get({
        hubKey,
        deviceKey: overflow.device_key,
        id: overflow.id,
        deviceKept: MAX_TELEMETRY_PER_DEVICE,
      });
      if ((newer?.n ?? 0) >= MAX_TELEMETRY_PER_DEVICE) statements.deleteTelemetry.run(overflow.id);
      statements.pruneDeviceTelemetry.run({
        hubKey,
        deviceKey,
        deviceKept: MAX_TELEMETRY_PER_DEVICE,
        hubLimitId: overflow.id,
      });
    });
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
      body: Buffer.from(row.body),
      properties: JSON.parse(row.properties_json) as Record<string, string>,
      transport: row.transport === 'https' ? 'https' : 'mqtt',
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
    return { seq: row.change_seq, device: this.#parse(row) };
  }

  #parse(row: DeviceRow): HubDevice {
    const device = JSON.parse(row.device_json) as HubDevice;
    if (typeof device?.identity?.deviceId !== 'string' || typeof device.twin?.version !== 'number') {
      throw new Error(`a hub device in ${this.path} has an invalid record`);
    }
    return device;
  }
}
