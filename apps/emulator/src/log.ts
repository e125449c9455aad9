export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One structured log line: `event` names what happened, the rest are its fields. */
export interface EmulatorLogRecord {
  time: string;
  level: LogLevel;
  event: string;
  msg: string;
  [field: string]: unknown;
}

export type LogSink = (record: EmulatorLogRecord) => void;

export interface Logger {
  debug(event: string, msg: string, fields?: Record<string, unknown>): void;
  info(event: string, msg: string, fields?: Record<string, unknown>): void;
  warn(event: string, msg: string, fields?: Record<string, unknown>): void;
  error(event: string, msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(sink: LogSink, minLevel: LogLevel = 'info'): Logger {
  const write =
    (level: LogLevel) =>
    (event: string, msg: string, fields: Record<string, unknown> = {}) => {
      if (RANK[level] < RANK[minLevel]) return;
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
    stream.write(`${time.slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${event.padEnd(13)} ${msg}\n`);
  };
}

export const silentSink: LogSink = () => {};
