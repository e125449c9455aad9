import type Database from 'better-sqlite3';
import type { HubDevice } from '../hub/core/identity.js';
import { type HubStore, MAX_TELEMETRY_KEPT, type TelemetryRecord } from '../hub/core/store.js';

interface DeviceRow {
  device_json: string;
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
 * folder sees every identity, twin and message at once.
 */
export class SqliteHubStore implements HubStore {
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
      put: db.prepare(
        `INSERT INTO hub_devices (hub_key, device_key, hub, device_id, device_json) VALUES (@hubKey, @deviceKey, @hub, @deviceId, @json)
         ON CONFLICT (hub_key, device_key) DO UPDATE SET hub = excluded.hub, device_id = excluded.device_id,
           device_json = excluded.device_json`,
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
      pruneTelemetry: db.prepare<[string, string, number]>(
        `DELETE FROM hub_telemetry WHERE hub_key = ? AND id <= (
           SELECT id FROM hub_telemetry WHERE hub_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      ),
      telemetryOfHub: db.prepare<[string], TelemetryRow>('SELECT * FROM hub_telemetry WHERE hub_key = ? ORDER BY id'),
      telemetryOfDevice: db.prepare<[string, string], TelemetryRow>(
        'SELECT * FROM hub_telemetry WHERE hub_key = ? AND device_key = ? ORDER BY id',
      ),
    };
  }

  getDevice(hub: string, deviceId: string): HubDevice | undefined {
    const row = this.#statements.get.get(hub.toLowerCase(), deviceId.toLowerCase());
    return row ? this.#parse(row) : undefined;
  }

  putDevice(device: HubDevice): void {
    const { hub, deviceId } = device.identity;
    this.#statements.put.run({
      hubKey: hub.toLowerCase(),
      deviceKey: deviceId.toLowerCase(),
      hub,
      deviceId,
      json: JSON.stringify(device),
    });
  }

  deleteDevice(hub: string, deviceId: string): boolean {
    return this.#statements.delete.run(hub.toLowerCase(), deviceId.toLowerCase()).changes > 0;
  }

  listDevices(hub?: string): HubDevice[] {
    const rows = hub === undefined ? this.#statements.listAll.all() : this.#statements.listHub.all(hub.toLowerCase());
    return rows.map((row) => this.#parse(row));
  }

  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  addTelemetry(message: TelemetryRecord): void {
    const hubKey = message.hub.toLowerCase();
    this.transaction(() => {
      this.#statements.addTelemetry.run({
        hubKey,
        deviceKey: message.deviceId.toLowerCase(),
        hub: message.hub,
        deviceId: message.deviceId,
        body: message.body,
        properties: JSON.stringify(message.properties),
        transport: message.transport,
        receivedUtc: message.receivedUtc,
      });
      this.#statements.pruneTelemetry.run(hubKey, hubKey, MAX_TELEMETRY_KEPT);
    });
  }

  telemetry(hub: string, deviceId?: string): TelemetryRecord[] {
    const rows =
      deviceId === undefined
        ? this.#statements.telemetryOfHub.all(hub.toLowerCase())
        : this.#statements.telemetryOfDevice.all(hub.toLowerCase(), deviceId.toLowerCase());
    return rows.map((row) => ({
      hub: row.hub,
      deviceId: row.device_id,
      body: Buffer.from(row.body),
      properties: JSON.parse(row.properties_json) as Record<string, string>,
      transport: row.transport === 'https' ? 'https' : 'mqtt',
      receivedUtc: row.received_utc,
    }));
  }

  #parse(row: DeviceRow): HubDevice {
    const device = JSON.parse(row.device_json) as HubDevice;
    if (typeof device?.identity?.deviceId !== 'string' || typeof device.twin?.version !== 'number') {
      throw new Error(`a hub device in ${this.path} has an invalid record`);
    }
    return device;
  }
}
