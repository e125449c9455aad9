import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyAssignment, MAX_TELEMETRY_KEPT } from '../hub/core/store.js';
import { SqliteStore } from './sqlite.js';

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
  it('keeps identities and twins across connections and restarts, case-insensitively', () => {
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
    expect(other.hub.getDevice('hub-a.net', 'dev-1')?.twin.tags).toEqual({ a: 1 });
    store.close();
    other.close();
    const reopened = open(dir).store;
    expect(reopened.hub.listDevices('HUB-A.NET').map((d) => d.identity.deviceId)).toEqual(['Dev-1']);
    expect(reopened.hub.deleteDevice('hub-a.net', 'DEV-1')).toBe(true);
    expect(reopened.hub.listDevices()).toEqual([]);
    reopened.close();
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
    expect(store.hub.telemetry('hub-b.net', 'D')).toHaveLength(1);
    store.close();
  });
});
