/**
 * The one set of level names dpskit logs with, in every app. Azure Functions' own names
 * (`information`, `warning`, `trace`, `critical`) are translated to these only where a Functions
 * context hands a log call over (the allocator's local host).
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** The level as a fixed-width label for terminal lines: `DEBUG`, `INFO `, `WARN `, `ERROR`. */
export function levelLabel(level: LogLevel): string {
  return level.toUpperCase().padEnd(5);
}

/** One structured log line: `event` names what happened, the rest are its fields. */
export interface LogRecord {
  time: string;
  level: LogLevel;
  event: string;
  msg: string;
  [field: string]: unknown;
}

export type LogSink = (record: LogRecord) => void;

export interface Logger {
  debug(event: string, msg: string, fields?: Record<string, unknown>): void;
  info(event: string, msg: string, fields?: Record<string, unknown>): void;
  warn(event: string, msg: string, fields?: Record<string, unknown>): void;
  error(event: string, msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** True when a record of `level` passes a `minLevel` filter. */
export function levelEnabled(level: LogLevel, minLevel: LogLevel): boolean {
  return RANK[level] >= RANK[minLevel];
}

export function createLogger(sink: LogSink, minLevel: LogLevel = 'info'): Logger {
  const write =
    (level: LogLevel) =>
    (event: string, msg: string, fields: Record<string, unknown> = {}) => {
      if (!levelEnabled(level, minLevel)) return;
      sink({ time: new Date().toISOString(), level, event, msg, ...fields });
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** One JSON object per line. */
export function jsonLineSink(stream: NodeJS.WritableStream = process.stdout): LogSink {
  return (record) => {
    stream.write(`${JSON.stringify(record)}\n`);
  };
}

/** `12:00:01 INFO  registration  contoso-toaster-007 assigned to hub-1 (custom, webhook 200 in 12 ms)`. */
export function prettySink(stream: NodeJS.WritableStream = process.stdout): LogSink {
  return (record) => {
    const { time, level, event, msg } = record;
    stream.write(`${time.slice(11, 19)} ${levelLabel(level)} ${event.padEnd(13)} ${msg}\n`);
  };
}

export const silentSink: LogSink = () => {};
