// The telemetry retention rule (hub/core/store.ts: each hub's newest MAX_TELEMETRY_KEPT and, besides,
// each device's newest MAX_TELEMETRY_PER_DEVICE) is kept by SqliteHubStore with numbered windows
// rather than by looking at every message. These tests drive it and the memory store, which applies
// the rule as written, with the same messages and compare every answer a reader can get.
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
  type TelemetryRecord,
} from '../hub/core/store.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-hub-retention-'));
  dirs.push(dir);
  return dir;
}

const keys = { primaryKey: 'cHJpbWFyeS1rZXktMTIzNDU2Nzg=', secondaryKey: 'c2Vjb25kYXJ5LWtleS0xMjM0NTY=' };
const now = new Date('2026-12-04T00:00:00.000Z');
// Hub names are keys in any case: the second spelling is the first hub's.
const HUBS = ['Hub-A.azure-devices.net', 'hub-b.azure-devices.net'] as const;
const SPELLINGS: Record<string, string> = { 'Hub-A.azure-devices.net': 'HUB-A.AZURE-DEVICES.NET' };
// Chatty devices (most of the traffic), quiet ones (a message now and then) and two whose ids differ
// only in case (separate devices: IoT Hub device ids are case-sensitive).
const CHATTY = ['chatty-1', 'chatty-2', 'chatty-3'];
const QUIET = ['quiet-1', 'quiet-2', 'quiet-3', 'quiet-4', 'Quiet-1'];

/** A small deterministic generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Step =
  | { kind: 'message'; message: TelemetryRecord }
  | { kind: 'delete'; hub: string; deviceId: string }
  | { kind: 'create'; hub: string; deviceId: string };

/** `count` messages over both hubs, with the quiet devices deleted and created again now and then. */
function steps(count: number, seed: number): Step[] {
  const next = random(seed);
  const out: Step[] = [];
  for (let i = 0; i < count; i++) {
    const hub = next() < 0.7 ? HUBS[0] : HUBS[1];
    const r = next();
    if (r < 0.004) {
      const deviceId = QUIET[Math.floor(next() * QUIET.length)] as string;
      out.push({ kind: 'delete', hub, deviceId }, { kind: 'create', hub, deviceId });
    }
    const deviceId =
      r < 0.06
        ? (QUIET[Math.floor(next() * QUIET.length)] as string)
        : (CHATTY[Math.floor(next() * CHATTY.length)] as string);
    out.push({
      kind: 'message',
      message: {
        // Sometimes the hub as another spelling names it.
        hub: next() < 0.1 ? (SPELLINGS[hub] ?? hub) : hub,
        deviceId,
        body: Buffer.from(`${deviceId} #${i}`),
        properties: { '$.mid': String(i), ...(i % 3 === 0 ? { note: 'ünïcode' } : {}) },
        transport: i % 5 === 0 ? 'https' : 'mqtt',
        receivedUtc: new Date(now.getTime() + i).toISOString(),
      },
    });
  }
  return out;
}

function createDevices(store: HubStore): void {
  for (const hub of HUBS) {
    for (const deviceId of [...CHATTY, ...QUIET]) {
      applyAssignment(store, { registrationId: deviceId, hub, deviceId, keys, resetTwin: true }, now);
    }
  }
}

function apply(store: HubStore, step: Step): void {
  if (step.kind === 'message') store.addTelemetry(step.message);
  else if (step.kind === 'delete') store.deleteDevice(step.hub, step.deviceId);
  else {
    const { hub, deviceId } = step;
    applyAssignment(store, { registrationId: deviceId, hub, deviceId, keys, resetTwin: true }, now);
  }
}

/** Everything a reader can ask of the telemetry, as plain data. */
function readings(store: HubStore): unknown {
  const plain = (records: TelemetryRecord[]) =>
    records.map((m) => [m.hub, m.deviceId, m.body.toString('utf8'), m.properties, m.transport, m.receivedUtc]);
  return HUBS.map((hub) => ({
    hub: plain(store.telemetry(hub)),
    newest: [1, 7, MAX_TELEMETRY_KEPT + 3].map((n) => plain(store.telemetry(hub.toUpperCase(), undefined, n))),
    devices: [...CHATTY, ...QUIET, 'never-sent'].map((deviceId) => ({
      all: plain(store.telemetry(hub, deviceId)),
      newest: [1, MAX_TELEMETRY_PER_DEVICE - 1, MAX_TELEMETRY_PER_DEVICE + 5].map((n) =>
        plain(store.telemetry(hub, deviceId, n)),
      ),
    })),
  }));
}

function count(store: HubStore): number {
  return HUBS.reduce((sum, hub) => sum + store.telemetry(hub).length, 0);
}

describe('hub telemetry retention: SQLite answers as the rule (the memory store) does', () => {
  it('through chatty and quiet devices, device deletion, two connections taking turns and a reopen of the file', () => {
    const memory = new MemoryHubStore();
    const dir = folder();
    const path = join(dir, 'emulator.db');
    let sqlite = SqliteStore.open(path);
    // A second connection to the same file writes some of the messages (as --workers do).
    let other = SqliteStore.open(path);
    createDevices(memory);
    createDevices(sqlite.hub);
    const all = steps(4 * MAX_TELEMETRY_KEPT, 13);
    try {
      all.forEach((step, i) => {
        apply(memory, step);
        apply(i % 4 === 3 ? other.hub : sqlite.hub, step);
        if (i % 400 === 399) {
          expect(readings(sqlite.hub), `after step ${i}`).toEqual(readings(memory));
          expect(readings(other.hub), `after step ${i}, the other connection`).toEqual(readings(memory));
        }
        if (i === Math.floor(all.length / 2)) {
          sqlite.close();
          other.close();
          sqlite = SqliteStore.open(path);
          other = SqliteStore.open(path);
        }
      });
      expect(readings(sqlite.hub)).toEqual(readings(memory));
      // The bound: each hub's newest MAX_TELEMETRY_KEPT plus at most MAX_TELEMETRY_PER_DEVICE per device.
      const devices = CHATTY.length + QUIET.length;
      expect(count(sqlite.hub)).toBeGreaterThanOrEqual(HUBS.length * MAX_TELEMETRY_KEPT);
      expect(count(sqlite.hub)).toBeLessThanOrEqual(
        HUBS.length * (MAX_TELEMETRY_KEPT + devices * MAX_TELEMETRY_PER_DEVICE),
      );
    } finally {
      sqlite.close();
      other.close();
    }
  });

  it("keeps a deleted device's messages, counting them as that device's when it is created again", () => {
    const memory = new MemoryHubStore();
    const sqlite = SqliteStore.open(join(folder(), 'emulator.db'));
    const hub = HUBS[0];
    const message = (deviceId: string, i: number): TelemetryRecord => ({
      hub,
      deviceId,
      body: Buffer.from(`${deviceId} ${i}`),
      properties: {},
      transport: 'mqtt',
      receivedUtc: now.toISOString(),
    });
    try {
      for (const store of [memory, sqlite.hub]) {
        createDevices(store);
        for (let i = 0; i < MAX_TELEMETRY_PER_DEVICE + 2; i++) store.addTelemetry(message('quiet-1', i));
        store.deleteDevice(hub, 'quiet-1');
        for (let i = 0; i < MAX_TELEMETRY_KEPT; i++) store.addTelemetry(message('chatty-1', i));
        apply(store, { kind: 'create', hub, deviceId: 'quiet-1' });
        for (let i = 100; i < 103; i++) store.addTelemetry(message('quiet-1', i));
      }
      const bodies = (store: HubStore) => store.telemetry(hub, 'quiet-1').map((m) => m.body.toString());
      expect(bodies(sqlite.hub)).toEqual([
        ...Array.from({ length: MAX_TELEMETRY_PER_DEVICE - 3 }, (_, n) => `quiet-1 ${n + 5}`),
        'quiet-1 100',
        'quiet-1 101',
        'quiet-1 102',
      ]);
      expect(readings(sqlite.hub)).toEqual(readings(memory));
    } finally {
      sqlite.close();
    }
  });

  // A file written by the schema before the numbered windows: its kept messages (with the gaps the
  // pruning left in their ids) are numbered by the migration, and the rule goes on from there.
  it('upgrades a file written before the messages were numbered and goes on keeping the same messages', () => {
    const memory = new MemoryHubStore();
    const dir = folder();
    const path = join(dir, 'emulator.db');
    const current = SqliteStore.open(path);
    createDevices(current.hub);
    current.close();
    createDevices(memory);
    const all = steps(3 * MAX_TELEMETRY_KEPT, 7);
    const half = Math.floor(all.length / 2);
    for (const step of all.slice(0, half)) apply(memory, step);
    // The previous schema's table, holding what the memory store kept, each row with its id as the
    // old store gave it (one AUTOINCREMENT over every message received, pruned ones included).
    const raw = new Database(path);
    // The version before the numbering (the migrations after it run again as they ran the first time).
    const version = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE hub_telemetry_numbered'));
    expect(version).toBeGreaterThan(0);
    raw.exec(`DROP TABLE hub_telemetry;
      CREATE TABLE hub_telemetry (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hub_key TEXT NOT NULL,
        device_key TEXT NOT NULL,
        hub TEXT NOT NULL,
        device_id TEXT NOT NULL,
        body BLOB NOT NULL,
        properties_json TEXT NOT NULL,
        transport TEXT NOT NULL,
        received_utc TEXT NOT NULL
      );
      CREATE INDEX hub_telemetry_by_hub ON hub_telemetry (hub_key, id);
      CREATE INDEX hub_telemetry_by_device ON hub_telemetry (hub_key, device_key, id);
      PRAGMA user_version = ${version};`);
    const insert = raw.prepare(
      `INSERT INTO hub_telemetry (id, hub_key, device_key, hub, device_id, body, properties_json, transport, received_utc)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const kept = HUBS.flatMap((hub) => memory.telemetry(hub));
    const received = all.slice(0, half).flatMap((step) => (step.kind === 'message' ? [step.message] : []));
    for (const m of kept) {
      const id = received.findIndex((r) => r.receivedUtc === m.receivedUtc) + 1;
      expect(id).toBeGreaterThan(0);
      insert.run(
        id,
        m.hub.toLowerCase(),
        m.deviceId,
        m.hub,
        m.deviceId,
        m.body,
        JSON.stringify(m.properties),
        m.transport,
        m.receivedUtc,
      );
    }
    expect(kept.length).toBeLessThan(received.length);
    raw.close();

    const migrated = SqliteStore.open(path);
    try {
      expect(readings(migrated.hub)).toEqual(readings(memory));
      all.slice(half).forEach((step, i) => {
        apply(memory, step);
        apply(migrated.hub, step);
        if (i % 500 === 499) expect(readings(migrated.hub), `after step ${half + i}`).toEqual(readings(memory));
      });
      expect(readings(migrated.hub)).toEqual(readings(memory));
    } finally {
      migrated.close();
    }
  });
});
