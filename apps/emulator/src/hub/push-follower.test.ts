import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type LogRecord } from '@dpskit/node-kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../store/sqlite.js';
import { checkpointThenChangeEnrollments, truncateToFirstPage } from '../testing/state-file-fault.js';
import { HubService } from './core/hub-service.js';
import type { HubPush } from './core/pushes.js';
import { followHubPushes } from './push-follower.js';

// Two connections on one database file stand for two processes of `dps-emulator start --workers`.
// The fault is real: the file is truncated under them (what a disk fault, or a copy or sync tool
// writing over it, leaves behind), so that SQLite reads zeros where the push table was.

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const HUB = 'hub-a.azure-devices.net';

describe('the hub push follower when the store cannot be read', () => {
  it('starts anyway, says why once, and follows from the newest push once the store reads again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-push-follower-'));
    dirs.push(dir);
    const file = join(dir, 'emulator.db');
    const a = SqliteStore.open(file);
    const b = SqliteStore.open(file);
    stores.push(a, b);
    const hubA = new HubService({ store: a.hub, hubs: [HUB], outbox: a.hubPushes('a') });
    hubA.putDevice(HUB, 'dev-1', {}, undefined);

    const logged: LogRecord[] = [];
    const delivered: HubPush[] = [];
    const follower = followHubPushes({
      feed: b.hubPushes('b'),
      deliver: (push) => delivered.push(push),
      log: createLogger((record) => logged.push(record), 'warn'),
      everyMs: 60_000,
    });
    try {
      hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'before' } } }, '*');
      const intact = checkpointThenChangeEnrollments(file);
      truncateToFirstPage(file, intact);
      // What aedes's clientReady calls when the first device connects to this process.
      expect(() => follower.start()).not.toThrow();
      follower.poll();
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 'warn', event: 'hub.push' });
      expect(logged[0]?.msg).toContain('malformed');

      // Restored: the pushes written from then on are delivered (the one written before is
      // skipped, as one written before a start is).
      writeFileSync(file, intact);
      checkpointThenChangeEnrollments(file);
      follower.poll();
      hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'after' } } }, '*');
      follower.poll();
      expect(delivered).toEqual([
        { kind: 'desired', hub: HUB, deviceId: 'dev-1', desired: { state: 'after', $version: 3 } },
      ]);
      expect(logged).toHaveLength(1);
    } finally {
      follower.close();
    }
  });
});

describe('the hub push follower once closed', () => {
  it('does not start again (no timer polling the store the emulator is closing)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-push-follower-'));
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, 'emulator.db'));
    stores.push(store);
    vi.useFakeTimers();
    try {
      const follower = followHubPushes({
        feed: store.hubPushes('b'),
        deliver: () => {},
        log: createLogger(() => {}, 'warn'),
      });
      follower.start();
      expect(vi.getTimerCount()).toBe(1);
      follower.close();
      // What a direct method call taken after the follower closed, and before the hub, asks for.
      follower.start();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
