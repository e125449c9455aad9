// Module identities in the store: SQLite answers as the memory store does, a device's deletion
// takes its modules (and only its own), and a module's telemetry keeps its module id.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { HubDevice } from '../hub/core/identity.js';
import type { HubModule } from '../hub/core/modules.js';
import { type HubStore, MemoryHubStore } from '../hub/core/store.js';
import { initialTwinState } from '../hub/core/twin.js';
import { databaseAtSchemaVersion } from '../testing/old-schema.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqlite(): HubStore {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-modules-store-'));
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, 'emulator.db'));
  stores.push(store);
  return store.hub;
}

const HUB = 'Edge-Hub.azure-devices.net';
const NOW = new Date('2026-12-05T06:00:00Z');
const identity = {
  status: 'enabled' as const,
  generationId: '1',
  etagVersion: 0,
  createdUtc: '',
  statusUpdatedUtc: '',
};
const device = (deviceId: string, hub = HUB): HubDevice => ({
  identity: { hub, deviceId, ...identity },
  twin: initialTwinState(undefined, NOW),
  connectionState: 'Disconnected',
});
const module = (deviceId: string, moduleId: string, hub = HUB): HubModule => ({
  identity: { hub, deviceId, moduleId, ...identity },
  twin: initialTwinState(undefined, NOW),
  connectionState: 'Disconnected',
});

describe.each([
  ['memory', () => new MemoryHubStore() as HubStore],
  ['SQLite', sqlite],
])('the %s store', (_name, make) => {
  it('keeps modules per device, case-sensitive, in module id order; a device deletion takes its own', () => {
    const store = make();
    store.putDevice(device('d1'));
    store.putDevice(device('d2'));
    for (const id of ['b', 'B', 'a']) store.putModule(module('d1', id));
    store.putModule(module('d2', 'a'));
    expect(store.modulesOf(HUB, 'd1').map((m) => m.identity.moduleId)).toEqual(['B', 'a', 'b']);
    // The hub's name in any case (a DNS name); module ids exactly.
    expect(store.getModule(HUB.toLowerCase(), 'd1', 'B')?.identity.moduleId).toBe('B');
    expect(store.getModule(HUB, 'd1', 'c')).toBeUndefined();
    store.putModule({ ...module('d1', 'a'), connectionState: 'Connected' });
    expect(store.getModule(HUB, 'd1', 'a')?.connectionState).toBe('Connected');
    expect(store.deleteModule(HUB, 'd1', 'b')).toBe(true);
    expect(store.deleteModule(HUB, 'd1', 'b')).toBe(false);
    expect(store.deleteDevice(HUB, 'd1')).toBe(true);
    expect(store.modulesOf(HUB, 'd1')).toEqual([]);
    expect(store.modulesOf(HUB, 'd2').map((m) => m.identity.moduleId)).toEqual(['a']);
    // Modules are no devices: the registry's lists and counts do not see them.
    expect(store.listDevices(HUB).map((d) => d.identity.deviceId)).toEqual(['d2']);
    expect(store.deviceStatistics(HUB)).toEqual({ total: 1, enabled: 1 });
  });

  it("gives a module's message to the built-in endpoint as an event with its module id and properties", () => {
    const store = make();
    const message = { hub: HUB, deviceId: 'd1', body: Buffer.from('x'), transport: 'mqtt' as const, receivedUtc: '' };
    const event = { partition: 1, enqueuedMs: 0, authenticationType: 'sas', generationId: '1' };
    store.addTelemetry({ ...message, properties: { a: '1' } }, event);
    store.addTelemetry({ ...message, moduleId: 'sensor', properties: { b: '2' } }, event);
    expect(store.eventsFrom(HUB, 1, 0, 10).map(({ moduleId, properties }) => ({ moduleId, properties }))).toEqual([
      { moduleId: undefined, properties: { a: '1' } },
      { moduleId: 'sensor', properties: { b: '2' } },
    ]);
  });

  it("keeps a module's telemetry with its module id beside the device's own", () => {
    const store = make();
    const message = { hub: HUB, deviceId: 'd1', body: Buffer.from('x'), transport: 'mqtt' as const, receivedUtc: '' };
    store.addTelemetry({ ...message, properties: { a: '1' } });
    store.addTelemetry({ ...message, moduleId: 'sensor', properties: { b: '2' } });
    expect(store.telemetry(HUB, 'd1').map(({ moduleId, properties }) => ({ moduleId, properties }))).toEqual([
      { moduleId: undefined, properties: { a: '1' } },
      { moduleId: 'sensor', properties: { b: '2' } },
    ]);
  });

  it("reads a hub's modules in (device id, module id) order after a module, a batch at a time", () => {
    const store = make();
    for (const [deviceId, moduleId] of [
      ['a-b', 'x'],
      ['a', 'z'],
      ['a', 'y'],
      ['b', 'a'],
    ] as const)
      store.putModule(module(deviceId, moduleId));
    store.putModule(module('a', 'other-hub', 'other.azure-devices.net'));
    const ids = (modules: HubModule[]) => modules.map((m) => `${m.identity.deviceId}/${m.identity.moduleId}`);
    // Ordered by device id, then module id (not as the joined text: '-' sorts before '/').
    expect(ids(store.modulesAfter(HUB, undefined, 10))).toEqual(['a/y', 'a/z', 'a-b/x', 'b/a']);
    expect(ids(store.modulesAfter(HUB, ['a', 'y'], 2))).toEqual(['a/z', 'a-b/x']);
    expect(ids(store.modulesAfter(HUB, ['a-b', 'x'], 10))).toEqual(['b/a']);
  });
});

describe("the SQLite store's change feed (the web view's)", () => {
  it("counts a device's modules and connected modules, and a module's write or removal is its device's change", () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-modules-feed-'));
    dirs.push(dir);
    const sqliteStore = SqliteStore.open(join(dir, 'emulator.db'));
    stores.push(sqliteStore);
    const store = sqliteStore.hub;
    store.putDevice(device('d1'));
    store.putDevice(device('d2'));
    expect(store.changedDevice(HUB, 'd1')?.modules).toBeUndefined();
    const before = store.latestDeviceChange();
    store.putModule(module('d1', 'a'));
    store.putModule({ ...module('d1', 'b'), connectionState: 'Connected' });
    store.putModule(module('d2', 'a', 'other.azure-devices.net')); // another hub's d2: no device row there
    expect(store.devicesChangedAfter(before, 10).map((c) => [c.device.identity.deviceId, c.modules])).toEqual([
      ['d1', { count: 2, connected: 1 }],
    ]);
    expect(store.latestChangedDevices(HUB, 1)[0]?.modules).toEqual({ count: 2, connected: 1 });
    const afterPuts = store.latestDeviceChange();
    expect(store.deleteModule(HUB, 'd1', 'b')).toBe(true);
    expect(store.devicesChangedAfter(afterPuts, 10).map((c) => c.modules)).toEqual([{ count: 1, connected: 0 }]);
    // Nothing removed, no change.
    const afterDelete = store.latestDeviceChange();
    expect(store.deleteModule(HUB, 'd1', 'b')).toBe(false);
    expect(store.latestDeviceChange()).toBe(afterDelete);
  });
});

describe("a module's message in SQLite", () => {
  it('keeps its module id in the module_id column, its properties as they were sent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-modules-column-'));
    dirs.push(dir);
    const path = join(dir, 'emulator.db');
    const store = SqliteStore.open(path);
    stores.push(store);
    const message = { hub: HUB, deviceId: 'd1', body: Buffer.from('x'), transport: 'mqtt' as const, receivedUtc: '' };
    store.hub.addTelemetry({ ...message, properties: { a: '1' } });
    store.hub.addTelemetry(
      { ...message, moduleId: 'sensor', properties: { b: '2' } },
      {
        partition: 0,
        enqueuedMs: 1,
        authenticationType: 'sas',
        generationId: 'g',
      },
    );
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.prepare('SELECT module_id, properties_json FROM hub_telemetry ORDER BY id').all()).toEqual([
        { module_id: null, properties_json: '{"a":"1"}' },
        { module_id: 'sensor', properties_json: '{"b":"2"}' },
      ]);
    } finally {
      raw.close();
    }
    expect(store.hub.eventsFrom(HUB, 0, 0, 10).map(({ moduleId, properties }) => ({ moduleId, properties }))).toEqual([
      { moduleId: 'sensor', properties: { b: '2' } },
    ]);
  });

  it('takes the module id of a message an older emulator kept as [properties, moduleId] into the column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-modules-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'emulator.db');
    const column = MIGRATIONS.findIndex((m) => m.includes('hub_telemetry_with_modules'));
    expect(column).toBeGreaterThan(0);
    const old = databaseAtSchemaVersion(path, column);
    const insert = old.prepare(
      `INSERT INTO hub_telemetry (hub_key, device_key, hub_seq, device_seq, hub, device_id, body, properties_json, transport, received_utc)
       VALUES ('h', 'd1', ?, ?, 'H', 'd1', x'00', ?, 'mqtt', '')`,
    );
    insert.run(1, 1, '{"a":"1"}');
    insert.run(2, 2, '[{"b":"2"},"sensor"]');
    old.close();
    const store = SqliteStore.open(path);
    stores.push(store);
    expect(store.hub.telemetry('h', 'd1').map(({ moduleId, properties }) => ({ moduleId, properties }))).toEqual([
      { moduleId: undefined, properties: { a: '1' } },
      { moduleId: 'sensor', properties: { b: '2' } },
    ]);
  });
});
