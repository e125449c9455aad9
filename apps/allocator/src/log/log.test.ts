import { format } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isoNow } from './clock.js';
import { isLogFields, logFields } from './fields.js';
import { formatHumanLine, formatJsonLine } from './format.js';
import { recordFromContextLog } from './from-context.js';
import type { AllocatorLogRecord } from './record.js';

const origin = { functionName: 'allocate', invocationId: 'id-1' };
const now = new Date('2026-01-02T03:04:05.678Z');

describe('logFields', () => {
  it('renders as full-depth JSON where the Functions worker formats log arguments', () => {
    const deep = { body: { a: { b: { c: { d: 1 } } } } };
    expect(format('Request.Body', logFields(deep))).toBe(`Request.Body ${JSON.stringify(deep)}`);
  });

  it('is recognised by brand, and serialises as its fields', () => {
    expect(isLogFields(logFields({ a: 1 }))).toBe(true);
    expect(isLogFields({ fields: { a: 1 } })).toBe(false);
    expect(isLogFields(null)).toBe(false);
    expect(JSON.stringify({ x: logFields({ a: 1 }) })).toBe('{"x":{"a":1}}');
  });
});

describe('recordFromContextLog', () => {
  it('keeps trailing structured fields as data', () => {
    expect(recordFromContextLog('information', ['Linked hubs', logFields({ linkedHubs: ['h'] })], origin, now)).toEqual(
      {
        time: '2026-01-02T03:04:05.678Z',
        level: 'info',
        source: 'function',
        msg: 'Linked hubs',
        functionName: 'allocate',
        invocationId: 'id-1',
        data: { linkedHubs: ['h'] },
      },
    );
  });

  it("translates Azure Functions' level names to dpskit's, at this edge only", () => {
    const levels = (['trace', 'debug', 'information', 'warning', 'error', 'critical'] as const).map(
      (level) => recordFromContextLog(level, ['x'], origin, now).level,
    );
    expect(levels).toEqual(['debug', 'debug', 'info', 'warn', 'error', 'error']);
  });

  it('formats plain arguments like the worker and adds no data', () => {
    const record = recordFromContextLog('warning', ['count %d of', 3, { a: 1 }], origin, now);
    expect(record.msg).toBe('count 3 of { a: 1 }');
    expect(record.data).toBeUndefined();
  });
});

describe('formatters', () => {
  const record: AllocatorLogRecord = {
    time: '2026-01-02T03:04:05.678Z',
    level: 'warn',
    source: 'function',
    msg: 'Rejected',
    functionName: 'allocate',
    invocationId: 'i',
    data: { reason: 'Unrecognized device registration.' },
  };

  it('writes one JSON object per line', () => {
    const line = formatJsonLine(record);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(record);
  });

  it('writes a readable terminal line', () => {
    expect(formatHumanLine(record)).toBe(
      '03:04:05.678 WARN  [allocate] Rejected {"reason":"Unrecognized device registration."}',
    );
    expect(formatHumanLine({ time: record.time, level: 'info', source: 'host', msg: 'Stopped' })).toBe(
      '03:04:05.678 INFO  [host] Stopped',
    );
  });
});

describe('isoNow', () => {
  it('is the current time as an ISO-8601 string, to the millisecond', () => {
    const before = Date.now();
    const stamp = isoNow();
    const after = Date.now();
    expect(stamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(stamp)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(stamp)).toBeLessThanOrEqual(after);
  });
});
