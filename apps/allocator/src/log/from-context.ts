import { format } from 'node:util';
import type { LogLevel as FunctionsLevel } from '@azure/functions';
import type { LogLevel } from '@dpskit/node-kit';
import { isoNow } from './clock.js';
import { isLogFields } from './fields.js';
import type { AllocatorLogRecord } from './record.js';

export interface ContextLogOrigin {
  functionName: string;
  invocationId: string;
}

/** The level names of Azure Functions, as an `InvocationContext` hands a log call over. */
export type FunctionsLogLevel = Exclude<FunctionsLevel, 'none'>;

const FROM_FUNCTIONS: Record<FunctionsLogLevel, LogLevel> = {
  trace: 'debug',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
};

/**
 * The Functions edge: Azure's level names (`information`, `warning`, ...) become dpskit's (`info`,
 * `warn`, ...) here and nowhere else. A name Functions does not define counts as `info`.
 */
export function fromFunctionsLevel(level: string): LogLevel {
  return Object.hasOwn(FROM_FUNCTIONS, level) ? FROM_FUNCTIONS[level as FunctionsLogLevel] : 'info';
}

/**
 * Turns one `InvocationContext` log call into a record: a trailing `logFields(...)` becomes `data`,
 * the other arguments are joined with `util.format` as the worker does.
 */
export function recordFromContextLog(
  level: FunctionsLogLevel,
  args: readonly unknown[],
  origin: ContextLogOrigin,
  now?: Date,
): AllocatorLogRecord {
  const count = args.length;
  const last = count === 0 ? undefined : args[count - 1];
  const fields = isLogFields(last) ? last.fields : undefined;
  // The message arguments are all but a trailing fields argument; util.format gives a lone string
  // back as it is: the usual `context.info('Message', fields)` needs no copy of the arguments.
  const first = args[0];
  const messageCount = fields ? count - 1 : count;
  const msg = messageCount === 1 && typeof first === 'string' ? first : format(...(fields ? args.slice(0, -1) : args));
  const record: AllocatorLogRecord = {
    time: now === undefined ? isoNow() : now.toISOString(),
    level: fromFunctionsLevel(level),
    source: 'function',
    msg,
    functionName: origin.functionName,
    invocationId: origin.invocationId,
  };
  if (fields) record.data = fields;
  return record;
}
