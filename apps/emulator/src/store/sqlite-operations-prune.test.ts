import { join } from 'node:path';
import type { RegistrationOperationStatus } from '@dpskit/contracts';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { OperationRecord } from '../core/store.js';
import { tempStateDir } from '../testing/fixtures.js';
import { databaseAtSchemaVersion } from '../testing/old-schema.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const operation = (operationId: string, createdAtMs: number): OperationRecord => ({
  operationId,
  registrationId: `dev-${operationId}`,
  enrollment: { kind: 'group', id: 'g' },
  transport: 'mqtt',
  createdAtMs,
});
const response = (operationId: string): RegistrationOperationStatus => ({
  operationId,
  status: 'assigned',
  registrationState: { registrationId: `dev-${operationId}`, status: 'assigned', assignedHub: 'a.net', deviceId: 'd' },
});

/** Operations created at 1000, 2000, ... 8000; `finished` gives the finish time of those that finished. */
function writeOperations(store: SqliteStore, finished: Record<string, number>): void {
  for (let i = 1; i <= 8; i++) {
    const id = `op-${i}`;
    store.createOperation(operation(id, i * 1000));
    const at = finished[id];
    if (at !== undefined) store.finishOperation(id, response(id), at);
  }
}

const FINISHED = { 'op-1': 1500, 'op-2': 9000, 'op-4': 4100, 'op-5': 5200, 'op-6': 6000, 'op-8': 8500 };
const left = (store: SqliteStore) =>
  Array.from({ length: 8 }, (_, i) => `op-${i + 1}`).filter((id) => store.getOperation(id) !== undefined);

describe('SqliteStore.pruneOperations (no index on finished_ms)', () => {
  it('forgets the operations finished before the cutoff, and keeps unfinished ones and those finished later', () => {
    const store = SqliteStore.open(join(dir.path, 'prune.db'));
    try {
      writeOperations(store, FINISHED);
      expect(store.pruneOperations(1000)).toBe(0);
      expect(store.pruneOperations(5200)).toBe(2);
      expect(left(store)).toEqual(['op-2', 'op-3', 'op-5', 'op-6', 'op-7', 'op-8']);
      expect(store.pruneOperations(8600)).toBe(3);
      // op-2 finished at 9000, op-3 and op-7 never did.
      expect(left(store)).toEqual(['op-2', 'op-3', 'op-7']);
      expect(store.unfinishedOperations().map((op) => op.operationId)).toEqual(['op-3', 'op-7']);
      expect(store.pruneOperations(Number.MAX_SAFE_INTEGER)).toBe(1);
      expect(left(store)).toEqual(['op-3', 'op-7']);
    } finally {
      store.close();
    }
  });

  it('upgrades a file the previous schema wrote (with operations_finished): operations kept, the index gone', () => {
    const path = join(dir.path, 'old.db');
    const drop = MIGRATIONS.findIndex((m) => m.includes('DROP INDEX IF EXISTS operations_finished'));
    expect(drop).toBeGreaterThan(0);
    // The schema as the version before wrote it, then its rows written by this store's statements
    // (they insert and update the same columns).
    databaseAtSchemaVersion(path, drop).close();
    const indexes = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operations'")
          .pluck()
          .all();
      } finally {
        db.close();
      }
    };
    expect(indexes()).toContain('operations_finished');
    expect(indexes()).toContain('operations_unfinished');
    const db = new Database(path);
    const insert = db.prepare(
      `INSERT INTO operations (operation_id, registration_id, enrollment_kind, enrollment_id, transport, created_ms, response_json, finished_ms)
       VALUES (?, ?, 'group', 'g', 'mqtt', ?, ?, ?)`,
    );
    for (let i = 1; i <= 8; i++) {
      const id = `op-${i}`;
      const at = FINISHED[id as keyof typeof FINISHED];
      insert.run(id, `dev-${id}`, i * 1000, at === undefined ? null : JSON.stringify(response(id)), at ?? null);
    }
    db.close();

    const store = SqliteStore.open(path);
    try {
      expect(indexes()).not.toContain('operations_finished');
      // Dropped too (a later migration): the unfinished ones are found through the other partial index.
      expect(indexes()).not.toContain('operations_unfinished');
      expect(indexes()).toContain('operations_unfinished_by_registration');
      expect(left(store)).toHaveLength(8);
      expect(store.getOperation('op-4')?.response).toEqual(response('op-4'));
      expect(store.unfinishedOperations().map((op) => op.operationId)).toEqual(['op-3', 'op-7']);
      expect(store.pruneOperations(5200)).toBe(2);
      expect(left(store)).toEqual(['op-2', 'op-3', 'op-5', 'op-6', 'op-7', 'op-8']);
      // Still in the order created (then written), whatever their registration ids' order.
      store.createOperation({ ...operation('op-9', 7000), registrationId: 'aaa' });
      store.createOperation({ ...operation('op-10', 500), registrationId: 'zzz' });
      expect(store.unfinishedOperations().map((op) => op.operationId)).toEqual(['op-10', 'op-3', 'op-7', 'op-9']);
    } finally {
      store.close();
    }
  });
});
