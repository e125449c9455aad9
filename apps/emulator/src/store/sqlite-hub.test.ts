import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applyAssignment,
  type HubStore,
  MAX_TELEMETRY_KEPT,
  MAX_TELEMETRY_PER_DEVICE,
  MemoryHubStore,
} from '../hub/core/store.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(dir?: string): { store: SqliteStore; dir: string } {
  const folder = dir ?? mkdtempSync(join(tmpdir(), 'dpskit-hub-store-'));
  if (!dir) dirs.push(folder);
  return { store: SqliteStore.open(join(folder, 'emulator.db')), dir: folder };
}

const keys = { primaryKey: 'cHJpbWFyeS1rZXktMTIzNDU2Nzg=', secondaryKey: 'c2Vjb25kYXJ5LWtleS0xMjM0NTY=' };
const now = new Date('2026-12-02T12:00:00.000Z');

describe('the hubs in SQLite', () => {
  it('keeps identities and twins across connections and restarts: hub names in any case, device ids exactly (IoT Hub device ids are case-sensitive)', () => {
    const { store, dir } = open();
    applyAssignment(
      store.hub,
      {
        registrationId: 'Dev-1',
        hub: 'Hub-A.net',
        deviceId: 'Dev-1',
        keys,
        resetTwin: true,
        initialTwin: { tags: { a: 1 } },
      },
      now,
    );
    const other = open(dir).store;
    expect(other.hub.getDevice('hub-a.net', 'Dev-1')?.twin.tags).toEqual({ a: 1 });
    expect(other.hub.getDevice('hub-a.net', 'dev-1')).toBeUndefined();
    store.close();
    other.close();
    const reopened = open(dir).store;
    expect(reopened.hub.listDevices('HUB-A.NET').map((d) => d.identity.deviceId)).toEqual(['Dev-1']);
    expect(reopened.hub.deleteDevice('hub-a.net', 'DEV-1')).toBe(false);
    expect(reopened.hub.deleteDevice('hub-a.net', 'Dev-1')).toBe(true);
    expect(reopened.hub.listDevices()).toEqual([]);
    reopened.close();
  });

  it('holds devices whose ids differ only in case apart, with their own telemetry', () => {
    const { store } = open();
    for (const deviceId of ['Dev-1', 'dev-1']) {
      applyAssignment(store.hub, { registrationId: deviceId, hub: 'hub-a.net', deviceId, keys, resetTwin: true }, now);
      store.hub.addTelemetry({
        hub: 'hub-a.net',
        deviceId,
        body: Buffer.from(deviceId),
        properties: {},
        transport: 'mqtt',
        receivedUtc: now.toISOString(),
      });
    }
    expect(store.hub.listDevices('hub-a.net').map((d) => d.identity.deviceId)).toEqual(['Dev-1', 'dev-1']);
    expect(store.hub.telemetry('hub-a.net', 'dev-1').map((m) => m.body.toString())).toEqual(['dev-1']);
    expect(store.hub.changedDevice('hub-a.net', 'Dev-1')?.device.identity.deviceId).toBe('Dev-1');
    store.close();
  });

  it('reads a hub in device id order a batch at a time, and counts its devices and the enabled ones, as the memory store does', () => {
    const { store } = open();
    const memory = new MemoryHubStore();
    for (const hubStore of [store.hub, memory] as HubStore[]) {
      for (const deviceId of ['b-2', 'A-1', 'a-3', 'c-4']) {
        applyAssignment(hubStore, { registrationId: deviceId, hub: 'Hub-A.net', deviceId, keys, resetTwin: true }, now);
      }
      applyAssignment(hubStore, { registrationId: 'x', hub: 'hub-b.net', deviceId: 'x', keys, resetTwin: true }, now);
      const disabled = hubStore.getDevice('hub-a.net', 'a-3');
      if (!disabled) throw new Error('a-3 was not written');
      hubStore.putDevice({ ...disabled, identity: { ...disabled.identity, status: 'disabled' } });
      const ids = (after: string | undefined, limit: number) =>
        hubStore.devicesAfter('HUB-A.NET', after, limit).map((d) => d.identity.deviceId);
      expect(ids(undefined, 10)).toEqual(['A-1', 'a-3', 'b-2', 'c-4']);
      expect(ids(undefined, 2)).toEqual(['A-1', 'a-3']);
      expect(ids('a-3', 10)).toEqual(['b-2', 'c-4']);
      expect(ids('c-4', 10)).toEqual([]);
      expect(hubStore.deviceStatistics('hub-a.net')).toEqual({ total: 4, enabled: 3 });
      expect(hubStore.deviceStatistics('hub-c.net')).toEqual({ total: 0, enabled: 0 });
    }
    store.close();
  });

  it('reads a store written before device ids were case-sensitive (keys lower-cased) by the exact ids', () => {
    const { store, dir } = open();
    applyAssignment(
      store.hub,
      { registrationId: 'Dev-1', hub: 'hub-a.net', deviceId: 'Dev-1', keys, resetTwin: true },
      now,
    );
    store.hub.addTelemetry({
      hub: 'hub-a.net',
      deviceId: 'Dev-1',
      body: Buffer.from('old'),
      properties: {},
      transport: 'mqtt',
      receivedUtc: now.toISOString(),
    });
    store.close();
    // As the schema version before the case-sensitive ids wrote it: the device keyed by its
    // lower-cased id. (The migrations after it run again: the telemetry's numbering reads the
    // columns it copies by name, so the newer table here upgrades as the old one; the later ones
    // run again as they ran the first time.)
    const db = new Database(join(dir, 'emulator.db'));
    const version = MIGRATIONS.findIndex((m) => m.includes('UPDATE hub_devices SET device_key = device_id'));
    expect(version).toBeGreaterThan(0);
    db.exec(`UPDATE hub_devices SET device_key = lower(device_id); UPDATE hub_telemetry SET device_key = lower(device_id);
      PRAGMA user_version = ${version};`);
    db.close();
    const migrated = open(dir).store;
    expect(migrated.hub.getDevice('hub-a.net', 'Dev-1')?.identity.deviceId).toBe('Dev-1');
    expect(migrated.hub.getDevice('hub-a.net', 'dev-1')).toBeUndefined();
    expect(migrated.hub.telemetry('hub-a.net', 'Dev-1').map((m) => m.body.toString())).toEqual(['old']);
    migrated.close();
  });

  // `--workers` processes share the file. A deferred transaction that reads and then writes cannot
  // wait for another process's write lock: SQLite fails its write at once with SQLITE_BUSY (a worker
  // once crashed so when a hub device disconnected). Each transaction takes the lock at its start.
  it('holds the write lock from the start of a transaction, so another process waits instead of slipping in between its read and its write', () => {
    const { store, dir } = open();
    applyAssignment(
      store.hub,
      { registrationId: 'dev-1', hub: 'hub-a.net', deviceId: 'dev-1', keys, resetTwin: true },
      now,
    );
    const otherProcess = new Database(join(dir, 'emulator.db'));
    otherProcess.pragma('busy_timeout = 0');
    try {
      const takeLock = () => otherProcess.exec('BEGIN IMMEDIATE; COMMIT');
      store.hub.transaction(() => {
        const device = store.hub.getDevice('hub-a.net', 'dev-1');
        expect(takeLock).toThrow(/database is locked/);
        if (device) store.hub.putDevice({ ...device, connectionState: 'Connected' });
      });
      store.transaction(() => {
        store.hub.getDevice('hub-a.net', 'dev-1');
        expect(takeLock).toThrow(/database is locked/);
      });
      // Released at the end of each.
      takeLock();
    } finally {
      otherProcess.close();
    }
    expect(store.hub.getDevice('hub-a.net', 'dev-1')?.connectionState).toBe('Connected');
    store.close();
  });

  it(`keeps the newest ${MAX_TELEMETRY_KEPT} messages per hub`, () => {
    const { store } = open();
    const message = (hub: string, i: number) => ({
      hub,
      deviceId: 'd',
      body: Buffer.from(String(i)),
      properties: { i: String(i) },
      transport: 'mqtt' as const,
      receivedUtc: now.toISOString(),
    });
    for (let i = 0; i < MAX_TELEMETRY_KEPT + 5; i++) store.hub.addTelemetry(message('hub-a.net', i));
    store.hub.addTelemetry(message('hub-b.net', 0));
    const kept = store.hub.telemetry('hub-a.net');
    expect(kept).toHaveLength(MAX_TELEMETRY_KEPT);
    expect(kept[0]?.body.toString()).toBe('5');
    expect(store.hub.telemetry('hub-b.net', 'd')).toHaveLength(1);
    store.close();
  });

  // The same rule in SQLite and in the unit tests' memory store.
  it.each([
    ['SQLite', () => open().store],
    ['memory', () => ({ hub: new MemoryHubStore() as HubStore, close: () => {} })],
  ])(`%s: besides, keeps each device's newest ${MAX_TELEMETRY_PER_DEVICE} however chatty the others`, (_, make) => {
    const store = make();
    const message = (deviceId: string, i: number) => ({
      hub: 'hub-a.net',
      deviceId,
      body: Buffer.from(`${deviceId} ${i}`),
      properties: {},
      transport: 'mqtt' as const,
      receivedUtc: now.toISOString(),
    });
    for (let i = 0; i < MAX_TELEMETRY_PER_DEVICE + 3; i++) store.hub.addTelemetry(message('quiet', i));
    for (let i = 0; i < MAX_TELEMETRY_KEPT + 50; i++) store.hub.addTelemetry(message('chatty', i));
    const bodies = (deviceId: string, newest?: number) =>
      store.hub.telemetry('HUB-A.NET', deviceId, newest).map((m) => m.body.toString());
    const quietKept = Array.from({ length: MAX_TELEMETRY_PER_DEVICE }, (_, n) => `quiet ${n + 3}`);
    expect(bodies('quiet')).toEqual(quietKept);
    expect(bodies('quiet', 2)).toEqual(quietKept.slice(-2));
    expect(bodies('chatty')).toHaveLength(MAX_TELEMETRY_KEPT);
    expect(bodies('chatty', 1)).toEqual([`chatty ${MAX_TELEMETRY_KEPT + 49}`]);
    // Once the quiet device speaks again, its oldest kept message goes: the bound is 1000 + 10 per device.
    store.hub.addTelemetry(message('quiet', 99));
    expect(bodies('quiet')).toEqual([...quietKept.slice(1), 'quiet 99']);
    expect(store.hub.telemetry('hub-a.net')).toHaveLength(MAX_TELEMETRY_KEPT + MAX_TELEMETRY_PER_DEVICE - 1);
    store.close();
  });

  it('gives every device write the next change seq, to follow from any connection, and counts devices per hub', () => {
    const { store, dir } = open();
    const reader = open(dir).store;
    expect(reader.hub.latestDeviceChange()).toBe(0);
    const assign = (hub: string, deviceId: string) =>
      applyAssignment(store.hub, { registrationId: deviceId, hub, deviceId, keys, resetTwin: true }, now);
    assign('Hub-A.net', 'dev-1');
    assign('hub-a.net', 'dev-2');
    assign('hub-b.net', 'dev-3');
    const first = reader.hub.latestDeviceChange();
    expect(reader.hub.devicesChangedAfter(0, 10).map((c) => c.device.identity.deviceId)).toEqual([
      'dev-1',
      'dev-2',
      'dev-3',
    ]);
    const device = store.hub.getDevice('hub-a.net', 'dev-1');
    if (!device) throw new Error('dev-1 is missing');
    store.hub.putDevice({ ...device, connectionState: 'Connected' });
    const changed = reader.hub.devicesChangedAfter(first, 10);
    expect(changed.map((c) => [c.device.identity.deviceId, c.device.connectionState])).toEqual([
      ['dev-1', 'Connected'],
    ]);
    expect(changed[0]?.seq).toBeGreaterThan(first);
    expect(reader.hub.latestChangedDevices('HUB-A.NET', 1).map((c) => c.device.identity.deviceId)).toEqual(['dev-1']);
    expect(reader.hub.deviceCounts()).toEqual(
      new Map([
        ['hub-a.net', 2],
        ['hub-b.net', 1],
      ]),
    );
    store.hub.deleteDevice('hub-a.net', 'dev-2');
    expect(reader.hub.deviceCounts().get('hub-a.net')).toBe(1);
    store.close();
    reader.close();
  });
});
