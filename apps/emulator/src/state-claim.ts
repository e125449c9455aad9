// One emulator per state folder, unless they serve it together. The store holds the enrollments and
// each start seeds its config's into it, so two emulators started on one folder (two test files that
// `node --test` or vitest runs at once, both on the default ./.dpskit/emulator) silently shared one
// set: the later start removed the enrollments the earlier one had seeded, whose devices were then
// refused with nothing in the test's output to say why. Processes started to serve one folder
// together (`sharedStore`: `dps-emulator start --workers`) may; anything else is refused at start.
//
// The claim is an SQLite lock on `<stateDir>/emulator.lock` (better-sqlite3 is already the store's
// driver), held by a transaction left open for the emulator's life: a shared claim's read
// transaction holds SQLite's SHARED lock, a sole claim's `BEGIN EXCLUSIVE` its EXCLUSIVE lock. The
// operating system drops the lock when the process ends, however it ends, so a crashed emulator
// leaves no stale claim and no process id can be mistaken for it (a pid file would be, after a
// restart or in a container). SQLite keeps these locks between connections of one process too, so
// two emulators in one test process are told apart as well.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const STATE_LOCK_FILE = 'emulator.lock';
/** How long a start waits for the folder's other emulator to stop before it gives up (default). */
export const CLAIM_WAIT_MS = 5000;
/** The longest `stateClaimWaitMs` taken: a start that waits longer looks hung. */
export const MAX_CLAIM_WAIT_MS = 60_000;

/** Why `value` is no wait option (stateClaimWaitMs, storeBusyTimeoutMs; undefined when it is one): whole ms, 0–60,000. */
export function waitMsProblem(name: string, value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_CLAIM_WAIT_MS)
    return undefined;
  return `${name} must be a whole number of milliseconds from 0 to ${MAX_CLAIM_WAIT_MS}, not ${typeof value === 'string' ? `"${value}"` : String(value)}`;
}

/** The state folder is served by another emulator that does not share it (or this one would not). */
export class StateDirInUseError extends Error {
  override readonly name = 'StateDirInUseError';
  constructor(
    readonly stateDir: string,
    waitedMs: number = CLAIM_WAIT_MS,
  ) {
    super(
      `The state folder ${stateDir} is in use by another running emulator (in this process or another; ` +
        `waited ${waitedMs / 1000} s for it to stop). ` +
        'Two emulators on one state folder share its store: the later start would replace the enrollments ' +
        'the other one seeded. Give each emulator its own state folder (stateDir, --state-dir: a temporary ' +
        'folder per test file), ' +
        'stop the other one first, or serve one folder from several processes with `dps-emulator start --workers n`.',
    );
  }
}

export interface StateClaim {
  /**
   * No other process served the folder when this one claimed it (a sole claim always; a shared one
   * when it was the first): what the store says of live connections is a previous run's, which this
   * process may clear before it takes any (connection states, cloud-to-device locks).
   */
  readonly alone: boolean;
  release(): void;
}

/**
 * Claims `stateDir` for this emulator: `shared` for processes that serve it together (`sharedStore`).
 * `waitMs`: how long to wait for another emulator holding it to stop (`stateClaimWaitMs`).
 */
export function claimStateDir(stateDir: string, shared: boolean, waitMs: number = CLAIM_WAIT_MS): StateClaim {
  mkdirSync(stateDir, { recursive: true });
  const db = new Database(join(stateDir, STATE_LOCK_FILE));
  try {
    // An emulator that is stopping (Ctrl-C, then start again at once) or creating the file's one
    // table lets go within moments: wait that long before calling the folder taken.
    db.pragma(`busy_timeout = ${waitMs}`);
    db.exec('CREATE TABLE IF NOT EXISTS claim (x INTEGER)');
    let alone = true;
    if (shared) {
      // Alone if the EXCLUSIVE lock is free at once (no other process holds the folder, shared or
      // not); then the shared claim, as every process serving the folder together holds it.
      alone = tryExclusive(db);
      db.exec('BEGIN');
      db.prepare('SELECT count(*) FROM claim').get();
    } else {
      db.exec('BEGIN EXCLUSIVE');
    }
    return { alone, release: () => db.close() };
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new StateDirInUseError(stateDir, waitMs);
    throw err;
  }
}

/** Takes and lets go of the EXCLUSIVE lock without waiting: whether no other connection held the file. */
function tryExclusive(db: Database.Database): boolean {
  const timeout = db.pragma('busy_timeout', { simple: true });
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw err;
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}
