import { levelLabel } from '@dpskit/node-kit';
import { jsonLine } from './json-line.js';
import type { AllocatorLogRecord } from './record.js';

/** One JSON object per line, for files and pipes: `JSON.stringify(record)`'s text, built faster (json-line.ts). */
export function formatJsonLine(record: AllocatorLogRecord): string {
  return jsonLine(record);
}

/**
 * One line for a terminal: `12:00:00.123 INFO  [allocate] Response {"status":200,...}`. Fields stay
 * JSON so that the request body can still be copied out of the terminal.
 */
export function formatHumanLine(record: AllocatorLogRecord): string {
  const clock = record.time.slice(11, 23);
  const origin = record.source === 'function' ? `[${record.functionName ?? 'function'}]` : '[host]';
  const data = record.data && Object.keys(record.data).length > 0 ? ` ${JSON.stringify(record.data)}` : '';
  return `${clock} ${levelLabel(record.level)} ${origin} ${record.msg}${data}`;
}

/**
 * The host's warning in place of `count` lines node-kit's line writer dropped while the reader of
 * stdout was more than its 4 MiB behind (DEFAULT_MAX_KEPT_BYTES), written once the reader catches up.
 */
export function droppedLinesRecord(count: number): AllocatorLogRecord {
  return {
    time: new Date().toISOString(),
    level: 'warn',
    source: 'host',
    msg: `${count} log lines dropped: the reader of this output fell more than 4 MiB behind`,
    data: { droppedLines: count },
  };
}
