// DPS over MQTT when the store cannot be read: the CONNECT's attestation reads the enrollments in
// the socket's 'data' handler, where a thrown error would end the process. The fault is real: the
// state file is truncated under the running emulator (what a disk fault, or a copy or sync tool
// writing over it, leaves behind), so that SQLite reads zeros where a table was and reports the
// database malformed.
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogRecord } from '@dpskit/node-kit';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey } from '../testing/fixtures.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

/**
 * Another connection to the emulator's state file: everything checkpointed into the file (whose
 * bytes are returned, to restore it), then an enrollment change committed, so that the emulator
 * reads the enrollments again on its next device request.
 */
function changeEnrollmentsAfterCheckpoint(file: string): Buffer {
  const other = new Database(file);
  try {
    other.pragma('busy_timeout = 5000');
    const [checkpoint] = other.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    if (checkpoint?.busy !== 0) throw new Error('the state file was not checkpointed');
    const bytes = readFileSync(file);
    // What a service API write's trigger does: counted as an enrollment change by every process.
    other.exec('UPDATE enrollment_changes SET count = count + 1');
    return bytes;
  } finally {
    other.close();
  }
}

describe('DPS over MQTT when the store cannot be read', () => {
  it('refuses the CONNECT as server unavailable, logs why, and goes on serving', async () => {
    const file = join(bed.emulator.stateDir, 'emulator.db');
    // Warm: the enrollments are read and kept until the store changes.
    const before = await register(bed.emulator, 'fault-dev-1', groupDeviceKey('hashed', 'fault-dev-1'));
    expect(before.status).toBe('assigned');

    const intact = changeEnrollmentsAfterCheckpoint(file);
    const pageSize = intact.readUInt16BE(16);
    // Only the first page (the schema) is left; the enrollment change is in the WAL.
    truncateSync(file, pageSize);
    const refused = await rejectionOf(register(bed.emulator, 'fault-dev-2', groupDeviceKey('hashed', 'fault-dev-2')));
    expect(refused.message).toMatch(/unavailable/i);
    const error = logged.find((r) => r.level === 'error' && r.event === 'mqtt.auth');
    expect(error?.msg).toContain('fault-dev-2');
    expect(error?.msg).toContain('malformed');

    // The file restored (and changed again, so that the emulator reads it anew): served as before.
    writeFileSync(file, intact);
    changeEnrollmentsAfterCheckpoint(file);
    const after = await register(bed.emulator, 'fault-dev-2', groupDeviceKey('hashed', 'fault-dev-2'));
    expect(after.status).toBe('assigned');
  }, 60_000);
});
