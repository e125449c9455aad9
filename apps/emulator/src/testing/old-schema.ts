import Database from 'better-sqlite3';
import { MIGRATIONS } from '../store/sqlite.js';

/**
 * Opens a new database file at `path` (WAL, as the store opens it) with the schema as version
 * `version` of the emulator wrote it (its first `version` migrations), for the tests of a
 * migration on a file an older emulator left. The caller writes that version's rows and closes it.
 */
export function databaseAtSchemaVersion(path: string, version: number): Database.Database {
  const raw = new Database(path);
  raw.pragma('journal_mode = WAL');
  for (const [index, migration] of MIGRATIONS.slice(0, version).entries()) {
    raw.exec(migration);
    raw.pragma(`user_version = ${index + 1}`);
  }
  return raw;
}
