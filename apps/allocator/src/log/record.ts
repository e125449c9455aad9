import type { LogLevel } from '@dpskit/node-kit';

/**
 * One structured log line of the allocator. `source: 'function'` lines are what the function
 * itself logs through `context.log`/`info`/`warn`/`error` (what the portal's Logs pane shows);
 * `source: 'host'` lines are the local host's own (listening, each HTTP exchange, key failures).
 */
export interface AllocatorLogRecord {
  /** ISO-8601 timestamp. */
  time: string;
  /** dpskit's level names; a function's `context.warn` etc. arrive translated (log/from-context.ts). */
  level: LogLevel;
  source: 'host' | 'function';
  msg: string;
  functionName?: string;
  invocationId?: string;
  /** Structured fields of the line, e.g. `{ body }`, `{ linkedHubs }`, `{ status, reason }`. */
  data?: Record<string, unknown>;
}

export type AllocatorLogSink = (record: AllocatorLogRecord) => void;
