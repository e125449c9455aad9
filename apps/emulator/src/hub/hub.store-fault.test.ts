// A hub whose store cannot be written keeps serving: the write that fails is logged and the
// connection it was for is closed, instead of an exception thrown from aedes's event ending the
// process (a `--workers` worker once ended so on SQLITE_BUSY when a device disconnected).
// The fault is real: another connection to the state's SQLite file holds its write lock for longer
// than the emulator's busy timeout, as a stuck process would. The lock is held until the failure
// is logged, so the emulator's wait (storeBusyTimeoutMs, 5 s by default) is set short: any wait
// ends the same way, and no other connection writes to this file.
import { join } from 'node:path';
import type { LogRecord } from '@dpskit/node-kit';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, registryClient } from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record), storeBusyTimeoutMs: 200 });
});
afterAll(async () => {
  await bed?.close();
});

const createDevice = (deviceId: string) => createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);

describe('the hub when its store cannot be written', () => {
  it('logs the failed write, closes that connection, and goes on serving', async () => {
    const lockedOut = 'store-locked-out';
    const lockedOutKey = await createDevice(lockedOut);
    const stuck = new Database(join(bed.emulator.stateDir, 'emulator.db'));
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: lockedOut, key: lockedOutKey });
    try {
      stuck.exec('BEGIN IMMEDIATE');
      try {
        // Whether the SDK sees its CONNACK before the close does not matter here.
        await client.open().catch(() => {});
        for (;;) {
          if (logged.some((r) => r.level === 'error' && r.msg.includes('connection state not stored'))) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        stuck.exec('COMMIT');
      }
    } finally {
      stuck.close();
      await client.close().catch(() => {});
    }
    const error = logged.find((r) => r.level === 'error' && r.msg.includes('connection state not stored'));
    expect(error).toMatchObject({ event: 'hub.mqtt' });
    expect(error?.msg).toContain('database is locked');
    expect(error?.msg).not.toContain(lockedOutKey);

    // Still serving: the registry never showed the device connected, and a device connects and
    // reads its twin.
    const registry = registryClient(bed.emulator, HUB_A);
    expect((await registry.get(lockedOut)).responseBody.connectionState).toBe('Disconnected');
    const fine = 'store-fine-again';
    const other = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: fine, key: await createDevice(fine) });
    await other.open();
    try {
      expect((await other.getTwin()).properties.reported.$version).toBe(1);
      expect((await registry.get(fine)).responseBody.connectionState).toBe('Connected');
    } finally {
      await other.close();
    }
  }, 60_000);
});
