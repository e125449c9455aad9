import { format } from 'node:util';
import { isLogFields } from './fields.js';
import type { AllocatorLogLevel, AllocatorLogRecord } from './record.js';

export interface ContextLogOrigin {
  functionName: string;
  invocationId: string;
}

/**
 * Turns one `InvocationContext` log call into a record: a trailing `logFields(...)` becomes `data`,
 * the other arguments are joined with `util.format` as the worker does.
 */
export function recordFromContextLog(
  level: AllocatorLogLevel,
  args: readonly unknown[],
  origin: ContextLogOrigin,
  now: Date = new Date(),
): AllocatorLogRecord {
  const last = args.at(-1);
  const fields = isLogFields(last) ? last.fields : undefined;
  const messageArgs = fields ? args.slice(0, -1) : args;
  const record: AllocatorLogRecord = {
    time: now.toISOString(),
    level,
    source: 'function',
    msg: format(...messageArgs),
    functionName: origin.functionName,
    invocationId: origin.invocationId,
  };
  if (fields) record.data = fields;
  return record;
}

const LEVELS: readonly string[] = ['trace', 'debug', 'information', 'warning', 'error', 'critical'];

export function isAllocatorLogLevel(value: unknown): value is AllocatorLogLevel {
  return typeof value === 'string' && LEVELS.includes(value);
}
