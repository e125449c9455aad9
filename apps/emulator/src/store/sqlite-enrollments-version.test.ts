import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite.js';

// Two connections on one database file stand for two workers of `dps-emulator start --workers`.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const group = (id: string) => ({
  kind: 'group' as const,
  id,
  record: { enrollmentGroupId: id, attestation: { type: 'symmetricKey' as const } },
});

describe('the enrollments version across connections', () => {
  it("stays as it is through another connection's registrations, and changes with its enrollment writes", () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-enrollments-version-'));
    dirs.push(dir);
    const a = SqliteStore.open(join(dir, 'emulator.db'));
    const b = SqliteStore.open(join(dir, 'emulator.db'));
    try {
      a.putEnrollment(group('g'));
      const seen = b.enrollmentsVersion();
      // What another worker commits per registration: an operation and its answer with the record.
      a.createOperation({
        operationId: 'op-1',
        registrationId: 'dev-1',
        enrollment: { kind: 'group', id: 'g' },
        transport: 'mqtt',
        createdAtMs: 1,
      });
      a.finishOperation(
        'op-1',
        { operationId: 'op-1', status: 'failed', registrationState: { registrationId: 'dev-1', status: 'failed' } },
        2,
        {
          registrationId: 'dev-1',
          enrollment: { kind: 'group', id: 'g' },
          result: { registrationId: 'dev-1', status: 'failed', createdDateTimeUtc: '2026-12-02T12:00:00.0000000Z' },
        },
      );
      expect(b.enrollmentsVersion()).toBe(seen);

      a.putEnrollment(group('h'));
      const afterPut = b.enrollmentsVersion();
      expect(afterPut).not.toBe(seen);
      a.putEnrollment(group('H'));
      const afterReplace = b.enrollmentsVersion();
      expect(afterReplace).not.toBe(afterPut);
      a.deleteEnrollment('group', 'h');
      expect(b.enrollmentsVersion()).not.toBe(afterReplace);
    } finally {
      a.close();
      b.close();
    }
  });
});
