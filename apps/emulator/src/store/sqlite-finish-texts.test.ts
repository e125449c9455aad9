import { join } from 'node:path';
import type { DeviceRegistrationResult, RegistrationOperationStatus } from '@dpskit/contracts';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { RegistrationRecord } from '../core/store.js';
import { tempStateDir } from '../testing/fixtures.js';
import { finishTexts, SqliteStore } from './sqlite.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const result = (registrationId: string): DeviceRegistrationResult => ({
  symmetricKey: { enrollmentGroupId: 'group-"1"' },
  registrationId,
  createdDateTimeUtc: '2026-12-03T19:00:00.1234567Z',
  assignedHub: 'hub-1.azure-devices.net',
  deviceId: registrationId,
  status: 'assigned',
  substatus: 'initialAssignment',
  lastUpdatedDateTimeUtc: '2026-12-03T19:00:00.1234567Z',
  etag: 'IjAxMjM0NTY3Ig==',
  // Escapes, non-ASCII and keys JSON.stringify orders first (integer-like): the splice must not differ.
  payload: { text: 'é \u2028 "quoted" \\ \n', 2: 'two', nested: { a: [1, null, true] } },
});
const record = (registrationId: string): RegistrationRecord => ({
  registrationId,
  enrollment: { kind: 'group', id: 'group-"1"' },
  result: result(registrationId),
});
const finished = (operationId: string, r: RegistrationRecord): RegistrationOperationStatus => ({
  operationId,
  status: r.result.status,
  registrationState: r.result,
});

describe('finishTexts (a finish serializes its result once)', () => {
  it('gives JSON.stringify of the response, and of the result when the response carries it', () => {
    const r = record('dev-1');
    const response = finished('op-"1"', r);
    expect(finishTexts(response, r)).toEqual({
      response: JSON.stringify(response),
      result: JSON.stringify(r.result),
    });
  });

  it('serializes the response whole when it is not the plain finish', () => {
    const r = record('dev-2');
    const chain = { ...finished('op-2', r), registrationState: { ...r.result, issuedCertificateChain: ['MIIB'] } };
    const extra = { ...finished('op-3', r), extra: 1 } as RegistrationOperationStatus;
    const reordered = {
      status: 'assigned',
      operationId: 'op-4',
      registrationState: r.result,
    } as RegistrationOperationStatus;
    for (const response of [chain, extra, reordered]) {
      expect(finishTexts(response, r)).toEqual({ response: JSON.stringify(response) });
    }
    expect(finishTexts(finished('op-5', r), undefined)).toEqual({ response: JSON.stringify(finished('op-5', r)) });
  });

  it('stores the same response and record text as before, joined with the insert or as an update', async () => {
    const store = SqliteStore.open(join(dir.path, 'finish.db'));
    const operation = (operationId: string, registrationId: string) => ({
      operationId,
      registrationId,
      enrollment: { kind: 'group' as const, id: 'group-"1"' },
      transport: 'mqtt' as const,
      createdAtMs: 1,
    });
    // Joined: finished in the turn its operation is created in.
    const joined = record('dev-joined');
    const created = store.createOperationSoon(operation('op-joined', 'dev-joined'));
    const joinedFinish = store.finishOperationSoon('op-joined', finished('op-joined', joined), 2, joined);
    store.flushWrites();
    await Promise.all([created, joinedFinish]);
    // Later: an update of the row written before.
    const later = record('dev-later');
    await store.createOperationSoon(operation('op-later', 'dev-later'));
    const laterFinish = store.finishOperationSoon('op-later', finished('op-later', later), 3, later);
    store.flushWrites();
    await laterFinish;
    // The bytes in the file, read on a connection of its own.
    const db = new Database(join(dir.path, 'finish.db'), { readonly: true });
    for (const [operationId, r] of [
      ['op-joined', joined],
      ['op-later', later],
    ] as const) {
      const { response_json } = db
        .prepare('SELECT response_json FROM operations WHERE operation_id = ?')
        .get(operationId) as {
        response_json: string;
      };
      expect(response_json).toBe(JSON.stringify(finished(operationId, r)));
      const { result_json } = db
        .prepare('SELECT result_json FROM registrations WHERE registration_key = ?')
        .get(r.registrationId) as { result_json: string };
      expect(result_json).toBe(JSON.stringify(r.result));
    }
    db.close();
    store.close();
  });
});
