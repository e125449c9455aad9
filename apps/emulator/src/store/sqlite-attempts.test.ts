import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { AttemptEntry } from '../core/attempts.js';
import { tempStateDir } from '../testing/fixtures.js';
import { databaseAtSchemaVersion } from '../testing/old-schema.js';
import { MIGRATIONS, SqliteStore } from './sqlite.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const attempt = (registrationId: string): Omit<AttemptEntry, 'seq'> => ({
  timestampUtc: '2026-12-02T12:00:00.000Z',
  registrationId,
  transport: 'mqtt',
  status: 'assigned',
  assignedHub: 'a.net',
  durationMs: 4,
  detail: { devicePayload: { text: '{"a":1}' } },
});

describe('SqliteStore registration attempts (the web view log)', () => {
  it('appends in order, pages after a seq or from the newest, opens one with its detail, across reopening', () => {
    const path = join(dir.path, 'attempts.db');
    const store = SqliteStore.open(path);
    const seqs = ['a', 'b', 'c', 'd'].map((id) => store.appendAttempt(attempt(id)));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(store.attemptsAfter(seqs[0] ?? 0, 2).map((a) => a.registrationId)).toEqual(['b', 'c']);
    expect(store.latestAttempts(2).map((a) => a.registrationId)).toEqual(['c', 'd']);
    expect(store.latestAttempts(2)[0]).not.toHaveProperty('detail');
    store.close();

    const reopened = SqliteStore.open(path);
    expect(reopened.getAttempt(seqs[1] ?? 0)).toEqual({ ...attempt('b'), seq: seqs[1] });
    expect(reopened.getAttempt(999)).toBeUndefined();
    reopened.close();
  });

  it('keeps the newest when pruned, and never reuses a pruned seq', () => {
    const store = SqliteStore.open(join(dir.path, 'pruned.db'));
    for (const id of ['a', 'b', 'c', 'd', 'e']) store.appendAttempt(attempt(id));
    expect(store.pruneAttempts(2)).toBe(3);
    expect(store.latestAttempts(10).map((a) => a.registrationId)).toEqual(['d', 'e']);
    const last = store.latestAttempts(1)[0]?.seq ?? 0;
    expect(store.pruneAttempts(0)).toBe(2);
    expect(store.appendAttempt(attempt('f'))).toBe(last + 1);
    store.close();
  });

  it('keeps numbering after the log was emptied, across reopening and more than once', () => {
    const path = join(dir.path, 'emptied.db');
    const store = SqliteStore.open(path);
    for (const id of ['a', 'b', 'c']) store.appendAttempt(attempt(id));
    expect(store.pruneAttempts(0)).toBe(3);
    store.close();
    const reopened = SqliteStore.open(path);
    expect(reopened.latestAttempts(10)).toEqual([]);
    expect(reopened.appendAttempt(attempt('d'))).toBe(4);
    expect(reopened.appendAttempt(attempt('e'))).toBe(5);
    expect(reopened.pruneAttempts(0)).toBe(2);
    expect(reopened.pruneAttempts(0)).toBe(0);
    expect(reopened.appendAttempt(attempt('f'))).toBe(6);
    expect(reopened.attemptsAfter(0, 10).map((a) => [a.seq, a.registrationId])).toEqual([[6, 'f']]);
    expect(reopened.getAttempt(6)).toEqual({ ...attempt('f'), seq: 6 });
    reopened.close();
  });

  it('writes no sqlite_sequence row per attempt (the table has no AUTOINCREMENT)', () => {
    const path = join(dir.path, 'no-sequence.db');
    const store = SqliteStore.open(path);
    for (const id of ['a', 'b']) store.appendAttempt(attempt(id));
    store.close();
    const raw = new Database(path, { readonly: true });
    try {
      expect(
        raw.prepare("SELECT count(*) FROM sqlite_sequence WHERE name = 'registration_attempts'").pluck().get(),
      ).toBe(0);
      const sql = raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'registration_attempts'").pluck().get();
      expect(sql).not.toMatch(/AUTOINCREMENT/i);
    } finally {
      raw.close();
    }
  });

  describe('a database the previous schema made (attempts numbered by AUTOINCREMENT)', () => {
    const rebuild = MIGRATIONS.findIndex((m) => m.includes('registration_attempts_rebuilt'));
    /** A file at the schema version before the rebuild, with the attempts as that version's store wrote and pruned them. */
    const oldFile = (name: string, ids: string[], keep: number) => {
      const path = join(dir.path, name);
      const raw = databaseAtSchemaVersion(path, rebuild);
      const append = raw.prepare('INSERT INTO registration_attempts (summary_json, detail_json) VALUES (?, ?)');
      for (const id of ids) {
        const { detail, ...summary } = attempt(id);
        append.run(JSON.stringify(summary), JSON.stringify(detail));
      }
      raw
        .prepare('DELETE FROM registration_attempts WHERE seq <= (SELECT max(seq) FROM registration_attempts) - ?')
        .run(keep);
      raw.close();
      return path;
    };

    it('keeps every attempt with its seq and numbers the next after them', () => {
      expect(rebuild).toBeGreaterThan(0);
      const path = oldFile('old-kept.db', ['a', 'b', 'c', 'd', 'e'], 3);
      const store = SqliteStore.open(path);
      try {
        expect(store.latestAttempts(10).map((a) => [a.seq, a.registrationId])).toEqual([
          [3, 'c'],
          [4, 'd'],
          [5, 'e'],
        ]);
        expect(store.getAttempt(4)).toEqual({ ...attempt('d'), seq: 4 });
        expect(store.appendAttempt(attempt('f'))).toBe(6);
        expect(store.attemptsAfter(5, 10).map((a) => a.registrationId)).toEqual(['f']);
      } finally {
        store.close();
      }
      const raw = new Database(path, { readonly: true });
      try {
        expect(
          raw.prepare("SELECT count(*) FROM sqlite_sequence WHERE name = 'registration_attempts'").pluck().get(),
        ).toBe(0);
      } finally {
        raw.close();
      }
    });

    it('numbers after the attempts it had pruned when it kept none (attemptHistory 0)', () => {
      const store = SqliteStore.open(oldFile('old-emptied.db', ['a', 'b', 'c', 'd'], 0));
      try {
        expect(store.latestAttempts(10)).toEqual([]);
        expect(store.appendAttempt(attempt('e'))).toBe(5);
        expect(store.appendAttempt(attempt('f'))).toBe(6);
        expect(store.latestAttempts(10).map((a) => [a.seq, a.registrationId])).toEqual([
          [5, 'e'],
          [6, 'f'],
        ]);
      } finally {
        store.close();
      }
    });

    it('runs again on a file it has upgraded, keeping attempts and floor (tests of older schemas do so)', () => {
      const path = oldFile('old-again.db', ['a', 'b', 'c'], 0);
      const store = SqliteStore.open(path);
      expect(store.appendAttempt(attempt('d'))).toBe(4);
      store.close();
      const raw = new Database(path);
      raw.pragma(`user_version = ${rebuild}`);
      raw.close();
      const again = SqliteStore.open(path);
      try {
        expect(again.latestAttempts(10).map((a) => [a.seq, a.registrationId])).toEqual([[4, 'd']]);
        expect(again.pruneAttempts(0)).toBe(1);
        expect(again.appendAttempt(attempt('e'))).toBe(5);
      } finally {
        again.close();
      }
    });

    it('starts at 1 when it never logged an attempt', () => {
      const store = SqliteStore.open(oldFile('old-never.db', [], 0));
      try {
        expect(store.appendAttempt(attempt('a'))).toBe(1);
        expect(store.appendAttempt(attempt('b'))).toBe(2);
      } finally {
        store.close();
      }
    });
  });
});
