import type { LogRecord, LogSink } from '@dpskit/node-kit';

// The test emulators' log, kept in memory and printed for a test that fails (setup-failure-log.ts),
// so a failure seen once under load comes with what the emulator did meanwhile instead of nothing.
// Bounded: the newest KEPT records. Printing is done only on failure, so a passing suite pays one
// array push per record. On globalThis because with `isolate: false` the setup file and the test
// files may hold different instances of this module; every test file of a worker runs one after
// another, so one buffer per worker process sees only the running file's emulators.

/** The records kept; a failed test prints at most PRINTED of those written during it. */
const KEPT = 4_000;
const PRINTED = 400;

interface Kept {
  records: LogRecord[];
  /** Records written so far, dropped ones included (a test's start is a position in this count). */
  written: number;
}

const KEY = Symbol.for('dpskit.emulator.failure-log');
const kept = (): Kept => {
  const global = globalThis as { [KEY]?: Kept };
  global[KEY] ??= { records: [], written: 0 };
  return global[KEY];
};

/** A log sink that keeps each record for `failureLogSince`. */
export const keepForFailure: LogSink = (record) => {
  const buffer = kept();
  buffer.records.push(record);
  buffer.written++;
  // Trimmed in halves, not one by one: a shift per record on a full buffer copies it every time.
  if (buffer.records.length > 2 * KEPT) buffer.records.splice(0, buffer.records.length - KEPT);
};

/** The position to pass to `failureLogSince` later. */
export const failureLogMark = (): number => kept().written;

/** The records written since `mark` (at most the last PRINTED), as text to print; '' for none. */
export function failureLogSince(mark: number): string {
  const { records, written } = kept();
  const since = records.slice(Math.max(0, records.length - (written - mark)));
  if (since.length === 0) return '';
  const shown = since.slice(-PRINTED);
  const omitted = written - mark - shown.length;
  const head = `The test emulators' log during this test (${omitted > 0 ? `the last ${shown.length}; ${omitted} earlier not shown` : `${shown.length} records`}):`;
  return [head, ...shown.map((record) => JSON.stringify(record))].join('\n');
}
