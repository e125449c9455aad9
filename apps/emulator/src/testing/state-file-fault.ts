// A real store fault for tests: the emulator's state file truncated under its open connections
// (what a disk fault, or a copy or sync tool writing over it, leaves behind), so that SQLite reads
// zeros where a table was and reports the database malformed. Used by the tests of the guarded
// store reads (mqtt.store-fault, push-follower).
import { readFileSync, truncateSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Another connection to the state file checkpoints everything into the file, whose bytes it returns
 * (to restore it with writeFileSync), then commits an enrollment change, as a service API write's
 * trigger does: every other connection, in this process or another, reads the file anew on its next
 * query.
 */
export function checkpointThenChangeEnrollments(file: string): Buffer {
  const other = new Database(file);
  try {
    other.pragma('busy_timeout = 5000');
    const [checkpoint] = other.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    if (checkpoint?.busy !== 0) throw new Error('the state file was not checkpointed');
    const bytes = readFileSync(file);
    other.exec('UPDATE enrollment_changes SET count = count + 1');
    return bytes;
  } finally {
    other.close();
  }
}

/** Leaves only the file's first page (the schema); the change committed after the checkpoint is in the WAL. */
export function truncateToFirstPage(file: string, intact: Buffer): void {
  // The database header's page size (bytes 16-17, big-endian).
  truncateSync(file, intact.readUInt16BE(16));
}
