// The enrollment quota's count (issue #13): kept by triggers in enrollment_counts, read as one row,
// and started from the rows of a file an older schema wrote.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEnrollment } from '../core/enrollments/store.js';
import { tempStateDir } from '../testing/fixtures.js';
import { databaseAtSchemaVersion } from '../testing/old-schema.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const individual = (id: string): StoredEnrollment => ({
  kind: 'individual',
  id,
  record: { registrationId: id, attestation: { type: 'symmetricKey' } },
});
const group = (id: string, type: 'symmetricKey' | 'x509' = 'symmetricKey'): StoredEnrollment => ({
  kind: 'group',
  id,
  record: { enrollmentGroupId: id, attestation: { type } },
});
const counts = (store: SqliteStore) => [
  store.countEnrollments('individual', { atMost: 1_000_000 }),
  store.countEnrollments('group', { atMost: 1_000_000 }),
];

describe('SqliteStore enrollment counts', () => {
  const counted = MIGRATIONS.findIndex((m) => m.includes('enrollment_counts'));

  /** A file at the schema version before the counts, with enrollments as that version's store wrote them. */
  const oldFile = (name: string) => {
    const path = join(dir.path, name);
    const raw = databaseAtSchemaVersion(path, counted);
    const put = raw.prepare(
      'INSERT INTO service_enrollments (kind, enrollment_key, enrollment_id, record_json) VALUES (?, ?, ?, ?)',
    );
    for (const e of [...['a', 'B', 'c', 'd', 'e'].map((id) => individual(id)), group('g1'), group('g2', 'x509')]) {
      put.run(e.kind, e.id.toLowerCase(), e.id, JSON.stringify(e.record));
    }
    raw.close();
    return path;
  };

  it('counts the enrollments a file of the previous schema holds, then keeps the count through creations, replacements and deletions', () => {
    expect(counted).toBeGreaterThan(0);
    const store = SqliteStore.open(oldFile('old.db'));
    try {
      expect(counts(store)).toEqual([5, 2]);
      store.putEnrollment(individual('f'));
      // A replacement (the same id, another case) is no creation.
      store.putEnrollment(individual('A'));
      store.putEnrollment(group('g3'));
      expect(counts(store)).toEqual([6, 3]);
      expect(store.deleteEnrollment('individual', 'b')).toBe(true);
      expect(store.deleteEnrollment('individual', 'b')).toBe(false);
      expect(store.deleteEnrollment('group', 'g1')).toBe(true);
      expect(counts(store)).toEqual([5, 2]);
      // Bounded as before, and a group's count per attestation type unchanged.
      expect(store.countEnrollments('individual', { atMost: 3 })).toBe(3);
      expect(store.countEnrollments('group', { attestationType: 'x509', atMost: 100 })).toBe(1);
      expect(store.countEnrollments('group', { attestationType: 'symmetricKey', atMost: 100 })).toBe(1);
      // A rolled-back write leaves the count as it was.
      expect(() =>
        store.transaction(() => {
          store.putEnrollment(individual('g'));
          throw new Error('rolled back');
        }),
      ).toThrow('rolled back');
      expect(counts(store)).toEqual([5, 2]);
    } finally {
      store.close();
    }
  });

  it('reads the kept count, not the rows (one row read however many enrollments there are)', () => {
    const path = join(dir.path, 'kept.db');
    const store = SqliteStore.open(path);
    const other = new Database(path);
    try {
      for (const id of ['a', 'b']) store.putEnrollment(individual(id));
      expect(counts(store)).toEqual([2, 0]);
      // Another program sets the count: the store reports it (bounded by atMost) without counting rows.
      other.prepare("UPDATE enrollment_counts SET count = 999999 WHERE kind = 'individual'").run();
      expect(store.countEnrollments('individual', { atMost: 1_000_000 })).toBe(999_999);
      expect(store.countEnrollments('individual', { atMost: 10 })).toBe(10);
    } finally {
      store.close();
      other.close();
    }
  });

  it('runs again on a file it has upgraded (tests of older schemas do so): counted anew, each change counted once', () => {
    const path = oldFile('old-again.db');
    SqliteStore.open(path).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${counted}`);
    raw.close();
    const store = SqliteStore.open(path);
    try {
      expect(counts(store)).toEqual([5, 2]);
      store.putEnrollment(individual('f'));
      expect(counts(store)).toEqual([6, 2]);
    } finally {
      store.close();
    }
  });
});
