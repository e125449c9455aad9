import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { RegistrationRecord } from '../core/store.js';
import { tempStateDir } from '../testing/fixtures.js';
import { MAX_HELD_OPERATIONS, SCHEMA_VERSION, SqliteStore } from './sqlite.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const record: RegistrationRecord = {
  registrationId: 'Dev-1',
  enrollment: { kind: 'group', id: 'g' },
  result: {
    registrationId: 'Dev-1',
    createdDateTimeUtc: '2026-01-01T00:00:00.0000000Z',
    assignedHub: 'a.net',
    deviceId: 'Dev-1',
    status: 'assigned',
    substatus: 'initialAssignment',
    lastUpdatedDateTimeUtc: '2026-01-01T00:00:00.0000000Z',
    etag: 'ImUi',
    payload: { a: [1, 2] },
  },
  assignment: { hub: 'a.net', deviceId: 'Dev-1', substatus: 'initialAssignment' },
  initialTwin: { tags: { t: 1 } },
};

/** An operation of the held-row tests (#held): every optional column set. */
const operation = (operationId: string) => ({
  operationId,
  registrationId: `Dev-${operationId}`,
  enrollment: { kind: 'group', id: 'g' } as const,
  transport: 'mqtt' as const,
  payload: { p: 'f\u00fcnf' },
  x509: { clientCertificate: 'MIIB' },
  csr: 'MIIC',
  createdAtMs: 1000,
});

/** Another program spoils the rows: what the store reads from the file from then on is refused. */
const spoilResponses = (file: Database.Database) =>
  file.prepare('UPDATE operations SET response_json = \'{"status":1}\'').run();

describe('SqliteStore', () => {
  it('keeps registration records and enrollment metadata across reopening, in WAL mode', () => {
    const path = join(dir.path, 'nested', 'state.db');
    const store = SqliteStore.open(path);
    store.put(record);
    store.put({
      ...record,
      registrationId: 'dev-2',
      result: { ...record.result, registrationId: 'dev-2', status: 'failed' },
    });
    store.putEnrollmentMeta('group', 'G', {
      generatedKeys: { secondaryKey: 'c2Vjb25k' },
      contentHash: 'h',
      etag: '"e"',
      createdDateTimeUtc: 'c',
      lastUpdatedDateTimeUtc: 'l',
    });
    store.close();

    const reopened = SqliteStore.open(path);
    try {
      expect(reopened.get('dev-1')).toEqual(record);
      expect(reopened.list().map((r) => r.registrationId)).toEqual(['Dev-1', 'dev-2']);
      expect(reopened.getEnrollmentMeta('group', 'g')).toEqual({
        generatedKeys: { secondaryKey: 'c2Vjb25k' },
        contentHash: 'h',
        etag: '"e"',
        createdDateTimeUtc: 'c',
        lastUpdatedDateTimeUtc: 'l',
      });
      expect(reopened.getEnrollmentMeta('individual', 'g')).toBeUndefined();
      // An update replaces the record (one row per registration id, case-insensitively).
      reopened.put({
        ...record,
        registrationId: 'DEV-1',
        result: { ...record.result, registrationId: 'DEV-1', status: 'disabled' },
      });
      expect(reopened.list()).toHaveLength(2);
      expect(reopened.get('dev-1')?.result.status).toBe('disabled');
    } finally {
      reopened.close();
    }
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      raw.close();
    }
  });

  it('refuses a database from a newer emulator, and a corrupt record names itself', () => {
    const newer = join(dir.path, 'newer.db');
    const raw = new Database(newer);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => SqliteStore.open(newer)).toThrow(
      `schema version ${SCHEMA_VERSION + 1}, newer than this emulator knows (${SCHEMA_VERSION})`,
    );

    const path = join(dir.path, 'corrupt.db');
    SqliteStore.open(path).close();
    const db = new Database(path);
    db.prepare(
      `INSERT INTO registrations (registration_key, registration_id, enrollment_kind, enrollment_id, status, result_json, last_updated_utc)
       VALUES ('bad', 'bad', 'group', 'g', 'assigned', '{"status":"weird"}', 'now')`,
    ).run();
    db.close();
    const store = SqliteStore.open(path);
    try {
      expect(() => store.get('bad')).toThrow(/registration record "bad" in .*corrupt\.db has an invalid result/);
    } finally {
      store.close();
    }
  });

  it('stores service enrollments, pages them, and sees writes of another connection (data_version)', () => {
    const path = join(dir.path, 'enrollments.db');
    const a = SqliteStore.open(path);
    const b = SqliteStore.open(path);
    try {
      const group = (id: string) => ({
        kind: 'group' as const,
        id,
        record: { enrollmentGroupId: id, attestation: { type: 'symmetricKey' as const } },
      });
      const before = b.enrollmentsVersion();
      a.transaction(() => {
        for (const id of ['c', 'A', 'b']) a.putEnrollment(group(id));
      });
      expect(b.enrollmentsVersion()).not.toBe(before);
      expect(b.getEnrollment('group', 'a')).toEqual(group('A'));
      const first = b.listEnrollments('group', { limit: 2 });
      expect(first.items.map((e) => e.id)).toEqual(['A', 'b']);
      expect(first.next).toBe('b');
      expect(b.listEnrollments('group', { after: first.next, limit: 2 })).toEqual({ items: [group('c')] });
      const seen = a.enrollmentsVersion();
      expect(b.deleteEnrollment('group', 'B')).toBe(true);
      expect(a.enrollmentsVersion()).not.toBe(seen);
      expect(a.getEnrollment('group', 'b')).toBeUndefined();
      a.put(record);
      expect(b.listByGroup('G').items.map((r) => r.registrationId)).toEqual(['Dev-1']);
      expect(b.delete('dev-1')).toBe(true);
      expect(a.get('Dev-1')).toBeUndefined();
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('SqliteStore operations (issue 8 item 1)', () => {
  const response = {
    operationId: 'op-1',
    status: 'assigned',
    registrationState: { ...record.result },
  } as const;

  it('keeps operations across reopening: unfinished ones in order, finished ones with their answer', () => {
    const path = join(dir.path, 'operations.db');
    const store = SqliteStore.open(path);
    store.createOperation({
      operationId: 'op-1',
      registrationId: 'Dev-1',
      enrollment: { kind: 'group', id: 'g' },
      transport: 'https',
      payload: { modelId: 'dtmi:x;1', nested: { a: [1] } },
      createdAtMs: 1000,
    });
    store.createOperation({
      operationId: 'op-2',
      registrationId: 'dev-2',
      enrollment: { kind: 'individual', id: 'dev-2' },
      transport: 'mqtt',
      x509: { clientCertificate: 'MIIB', certificateChain: ['MIIC'] },
      createdAtMs: 2000,
    });
    store.finishOperation('op-1', response, 3000, record);
    store.close();

    const reopened = SqliteStore.open(path);
    try {
      expect(reopened.getOperation('op-1')).toEqual({
        operationId: 'op-1',
        registrationId: 'Dev-1',
        enrollment: { kind: 'group', id: 'g' },
        transport: 'https',
        payload: { modelId: 'dtmi:x;1', nested: { a: [1] } },
        createdAtMs: 1000,
        response,
        // Its text as stored, which a poll writes as it is: JSON.stringify's bytes.
        responseJson: JSON.stringify(response),
        finishedAtMs: 3000,
      });
      // Stored as sent: the answer keeps its field order.
      expect(Object.keys(reopened.getOperation('op-1')?.response?.registrationState ?? {})).toEqual(
        Object.keys(record.result),
      );
      expect(reopened.get('dev-1')).toEqual(record);
      expect(reopened.unfinishedOperations().map((op) => op.operationId)).toEqual(['op-2']);
      expect(reopened.pruneOperations(2999)).toBe(0);
      expect(reopened.pruneOperations(3001)).toBe(1);
      expect(reopened.getOperation('op-1')).toBeUndefined();
      expect(reopened.getOperation('op-2')?.response).toBeUndefined();
      expect(reopened.getOperation('op-2')?.x509).toEqual({ clientCertificate: 'MIIB', certificateChain: ['MIIC'] });
    } finally {
      reopened.close();
    }
  });

  it('saves the record and the answer together or not at all', () => {
    const store = SqliteStore.open(join(dir.path, 'atomic.db'));
    try {
      const changed: RegistrationRecord = { ...record, result: { ...record.result, status: 'failed' } };
      expect(() => store.finishOperation('no-such-operation', response, 1, changed)).toThrow('does not exist');
      expect(store.get('dev-1')).toBeUndefined();
    } finally {
      store.close();
    }
  });
  it('commits the finishes of one event-loop turn together: one that fails is rolled back alone', async () => {
    const path = join(dir.path, 'batched.db');
    const store = SqliteStore.open(path);
    const other = SqliteStore.open(path);
    try {
      for (const operationId of ['op-a', 'op-b']) {
        store.createOperation({
          operationId,
          registrationId: operationId === 'op-a' ? 'Dev-1' : 'dev-2',
          enrollment: { kind: 'group', id: 'g' },
          transport: 'mqtt',
          createdAtMs: 1000,
        });
      }
      const dev2: RegistrationRecord = {
        ...record,
        registrationId: 'dev-2',
        result: { ...record.result, registrationId: 'dev-2' },
      };
      const a = store.finishOperationSoon('op-a', { ...response, operationId: 'op-a' }, 2000, record);
      const missing = store.finishOperationSoon('no-such-operation', response, 2000, dev2);
      const b = store.finishOperationSoon('op-b', { ...response, operationId: 'op-b' }, 2000);
      // Nothing is written before the end of the turn (another connection sees nothing yet).
      expect(other.getOperation('op-a')?.response).toBeUndefined();
      await expect(missing).rejects.toThrow('does not exist');
      await Promise.all([a, b]);
      expect(other.getOperation('op-a')?.response).toEqual({ ...response, operationId: 'op-a' });
      expect(other.getOperation('op-b')?.finishedAtMs).toBe(2000);
      expect(other.get('dev-1')).toEqual(record);
      expect(other.get('dev-2')).toBeUndefined();

      // Writes still queued when the store closes are committed first.
      const late = store.writeSoon(() => store.put(dev2));
      store.close();
      await late;
      expect(other.get('dev-2')).toEqual(dev2);
    } finally {
      store.close();
      other.close();
    }
  });

  it('answers the first read of an operation it finished on insert as its row holds it, without the file; later reads, and pruned or dropped ones, from the file', async () => {
    const path = join(dir.path, 'held.db');
    const store = SqliteStore.open(path);
    const file = new Database(path);
    const finish = async (operationId: string, finishedAtMs: number) => {
      const saved = store.createOperationSoon(operation(operationId));
      const finished = store.finishOperationSoon(operationId, { ...response, operationId }, finishedAtMs, {
        ...record,
        registrationId: `Dev-${operationId}`,
      });
      await Promise.all([saved, finished]);
    };
    const spoil = () => spoilResponses(file);
    try {
      await finish('op-1', 2000);
      const fromFile = SqliteStore.open(path);
      const expected = fromFile.getOperation('op-1');
      fromFile.close();
      expect(expected?.responseJson).toBe(JSON.stringify({ ...response, operationId: 'op-1' }));
      spoil();
      // The first read: what was committed, equal to the row's reading before it was spoiled.
      expect(store.getOperation('op-1')).toEqual(expected);
      expect(() => store.getOperation('op-1')).toThrow(/operation "op-1" in .*held\.db has an invalid response/);

      // Pruned: gone from the file and from memory alike.
      await finish('op-2', 2000);
      expect(store.pruneOperations(2001)).toBe(2);
      expect(store.getOperation('op-2')).toBeUndefined();

      // At most MAX_HELD_OPERATIONS kept: the oldest is read from the file.
      for (let i = 0; i <= MAX_HELD_OPERATIONS; i++) store.createOperationSoon(operation(`op-n${i}`));
      await Promise.all(
        Array.from({ length: MAX_HELD_OPERATIONS + 1 }, (_, i) =>
          store.finishOperationSoon(`op-n${i}`, { ...response, operationId: `op-n${i}` }, 3000),
        ),
      );
      spoil();
      expect(() => store.getOperation('op-n0')).toThrow(/invalid response/);
      expect(store.getOperation('op-n1')?.response?.operationId).toBe('op-n1');
      expect(store.getOperation(`op-n${MAX_HELD_OPERATIONS}`)?.responseJson).toBe(
        JSON.stringify({ ...response, operationId: `op-n${MAX_HELD_OPERATIONS}` }),
      );
    } finally {
      store.close();
      file.close();
    }
  });

  it('answers the first read of an operation inserted unfinished and finished in a later turn as its finished row holds it, without the file', async () => {
    const path = join(dir.path, 'held-later.db');
    const store = SqliteStore.open(path);
    const file = new Database(path);
    const spoil = () => spoilResponses(file);
    try {
      // As a custom allocation: inserted in one turn, finished (the webhook's answer) in a later one.
      await store.createOperationSoon(operation('op-1'));
      expect(store.getOperation('op-1')?.response).toBeUndefined();
      await store.finishOperationSoon('op-1', { ...response, operationId: 'op-1' }, 2000, {
        ...record,
        registrationId: 'Dev-op-1',
      });
      const fromFile = SqliteStore.open(path);
      const expected = fromFile.getOperation('op-1');
      fromFile.close();
      expect(expected?.responseJson).toBe(JSON.stringify({ ...response, operationId: 'op-1' }));
      expect(expected?.finishedAtMs).toBe(2000);
      spoil();
      // The first read after the finish: what was committed, equal to the row's reading before it was spoiled.
      expect(store.getOperation('op-1')).toEqual(expected);
      expect(() => store.getOperation('op-1')).toThrow(/operation "op-1" in .*held-later\.db has an invalid response/);

      // A finish that fails (the row was finished by another connection) holds nothing.
      await store.createOperationSoon(operation('op-2'));
      file.prepare("UPDATE operations SET response_json = '{}', finished_ms = 5 WHERE operation_id = 'op-2'").run();
      await expect(store.finishOperationSoon('op-2', { ...response, operationId: 'op-2' }, 2000)).rejects.toThrow(
        'has already finished',
      );
      expect(() => store.getOperation('op-2')).toThrow(/invalid response/);
    } finally {
      store.close();
      file.close();
    }
  });

  it("announces the pushes of a turn's writes once when another write of the turn fails", async () => {
    const store = SqliteStore.open(join(dir.path, 'pushes-rerun.db'));
    const announced: unknown[] = [];
    store.assignmentPushes = { announce: (push) => announced.push(push) };
    const keys = { primaryKey: 'cHJpbWFyeQ==', secondaryKey: 'c2Vjb25kYXJ5' };
    const operation = (operationId: string) => ({
      operationId,
      registrationId: 'Dev-1',
      enrollment: { kind: 'group', id: 'g' } as const,
      transport: 'mqtt' as const,
      createdAtMs: 1000,
    });
    try {
      store.createOperation(operation('op-1'));
      store.finishOperation('op-1', response, 1000, record, {
        registrationId: 'Dev-1',
        hub: 'a.net',
        deviceId: 'Dev-1',
        keys,
        resetTwin: false,
      });
      expect(announced).toEqual([]);
      // One turn: the device moves to b.net (its identity on a.net deleted: a push owed to its
      // connection there), and another write fails. The batch is run again without the failing write.
      const saved = store.createOperationSoon(operation('op-2'));
      const moved = store.finishOperationSoon('op-2', { ...response, operationId: 'op-2' }, 2000, record, {
        registrationId: 'Dev-1',
        hub: 'b.net',
        deviceId: 'Dev-1',
        keys,
        resetTwin: false,
        previous: { hub: 'a.net', deviceId: 'Dev-1' },
      });
      const failing = store.writeSoon(() => {
        store.put(record);
        throw new Error('this write fails');
      });
      await Promise.all([saved, moved]);
      await expect(failing).rejects.toThrow('this write fails');
      expect(announced).toEqual([{ kind: 'deleted', hub: 'a.net', deviceId: 'Dev-1' }]);
      expect(store.hub.getDevice('a.net', 'Dev-1')).toBeUndefined();
      expect(store.hub.getDevice('b.net', 'Dev-1')?.identity.deviceId).toBe('Dev-1');
      expect(store.getOperation('op-2')?.finishedAtMs).toBe(2000);
    } finally {
      store.close();
    }
  });

  it('writes an operation with the turn, finished at once when its finish comes in the same turn', async () => {
    const path = join(dir.path, 'created-soon.db');
    const store = SqliteStore.open(path);
    const other = SqliteStore.open(path);
    const operation = (operationId: string, registrationId: string) => ({
      operationId,
      registrationId,
      enrollment: { kind: 'group', id: 'g' } as const,
      transport: 'mqtt' as const,
      payload: { p: 1 },
      createdAtMs: 1000,
    });
    try {
      const saved = store.createOperationSoon(operation('op-1', 'Dev-1'));
      const finished = store.finishOperationSoon('op-1', response, 2000, record);
      // Nothing is written before the end of the turn: another connection does not see it yet.
      expect(other.getOperation('op-1')).toBeUndefined();
      await Promise.all([saved, finished]);
      expect(other.getOperation('op-1')).toEqual({
        ...operation('op-1', 'Dev-1'),
        response,
        responseJson: JSON.stringify(response),
        finishedAtMs: 2000,
      });
      expect(other.get('dev-1')).toEqual(record);
      expect(other.unfinishedOperations()).toEqual([]);
      expect(other.firstUnfinishedOperation('dev-1')).toBeUndefined();

      // A finish that fails (its record cannot be stored) leaves the operation saved, unfinished.
      const unstorable = { ...record, registrationId: 'dev-2', result: { ...record.result, payload: { n: 1n } } };
      const kept = store.createOperationSoon(operation('op-2', 'dev-2'));
      const failing = store.finishOperationSoon(
        'op-2',
        { ...response, operationId: 'op-2' },
        2000,
        unstorable as unknown as RegistrationRecord,
      );
      await kept;
      await expect(failing).rejects.toThrow('BigInt');
      expect(other.getOperation('op-2')?.response).toBeUndefined();
      expect(other.get('dev-2')).toBeUndefined();
      // A finish in a later turn updates the row, as for an operation written at once.
      await store.finishOperationSoon('op-2', { ...response, operationId: 'op-2' }, 3000);
      expect(other.getOperation('op-2')?.finishedAtMs).toBe(3000);
      // A second finish of an operation finished on insert is refused, as a second update is.
      await expect(store.finishOperationSoon('op-1', response, 4000)).rejects.toThrow('already finished');
    } finally {
      store.close();
      other.close();
    }
  });
});
