import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AttemptEntry } from '../core/attempts.js';
import { tempStateDir } from '../testing/fixtures.js';
import { SqliteStore } from './sqlite.js';

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
});
