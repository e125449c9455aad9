import type { LogLevel } from '@azure/functions';

/** The levels `InvocationContext` logs with (`'none'` is a filter setting, never a record level). */
export type AllocatorLogLevel = Exclude<LogLevel, 'none'>;

/**
 * One structured log line of the allocator. `source: 'function'` lines are what the function
 * itself logs through `context.log`/`info`/`warn`/`error` (what the portal's Logs pane shows);
 * `source: 'host'` lines are the local host's own (listening, each HTTP exchange, key failures).
 */
export interface AllocatorLogRecord {
  /** ISO-8601 timestamp. */
  time: string;
  level: AllocatorLogLevel;
  source: 'host' | 'function';
  msg: string;
  functionName?: string;
  invocationId?: string;
  /** Structured fields of the line, e.g. `{ body }`, `{ linkedHubs }`, `{ status, reason }`. */
  data?: Record<string, unknown>;
}

export type AllocatorLogSink = (record: AllocatorLogRecord) => void;
