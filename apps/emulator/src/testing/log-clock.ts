import type { LogRecord } from '@dpskit/node-kit';
import { type LimitedKind, warningKey } from '../core/limited-warnings.js';

/**
 * A clock for `EmulatorOptions.logClock` that only the test moves. The log's limit on warnings any
 * client can cause (core/limited-warnings.ts) logs the first warning of each kind in each second of
 * this clock in full and counts the rest: `nextSecond()` starts a new second, so that the next
 * warning of each kind is logged in full; while it stands still, a flood is counted. No test waits
 * on the wall clock for it.
 */
export interface LogClock {
  now: () => Date;
  nextSecond(): void;
  /** Whole seconds the clock has moved since it was made (for a bound on the lines logged in full). */
  readonly seconds: number;
}

export function logClock(start = Date.parse('2026-12-04T18:00:00Z')): LogClock {
  let at = start;
  return {
    now: () => new Date(at),
    nextSecond() {
      at += 1000;
    },
    get seconds() {
      return (at - start) / 1000;
    },
  };
}

/** A limited warning's count line (`N more … not logged one by one`), as the limiter writes it. */
export const isCountLine = (record: LogRecord): boolean => typeof record.suppressed === 'number';

/**
 * What the warn lines of one limited kind say was refused: the lines logged in full, the count
 * lines, and every warning by its key (`warningKey` for a line in full, the count lines' `reasons`
 * for the rest), which add up to `total`.
 */
export function tally(
  lines: readonly LogRecord[],
  kind: LimitedKind,
): { full: LogRecord[]; counted: LogRecord[]; byKey: Record<string, number>; total: number } {
  const full = lines.filter((l) => !isCountLine(l));
  const counted = lines.filter(isCountLine);
  const byKey: Record<string, number> = {};
  const add = (key: string, n: number) => {
    byKey[key] = (byKey[key] ?? 0) + n;
  };
  for (const line of full) add(warningKey(kind, line), 1);
  for (const line of counted)
    for (const [key, n] of Object.entries(line.reasons as Record<string, number>)) add(key, n);
  return { full, counted, byKey, total: Object.values(byKey).reduce((a, b) => a + b, 0) };
}
