import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel, jsonLineSink, type LogRecord, levelLabel, prettySink } from './logger.js';

describe('createLogger', () => {
  it('drops records below the minimum level and stamps the rest', () => {
    const records: LogRecord[] = [];
    const log = createLogger((r) => records.push(r), 'warn');
    log.info('x', 'hidden');
    log.warn('webhook', 'slow', { ms: 12 });
    log.error('store', 'broken');
    expect(records.map((r) => [r.level, r.event, r.msg])).toEqual([
      ['warn', 'webhook', 'slow'],
      ['error', 'store', 'broken'],
    ]);
    expect(records[0]!.ms).toBe(12);
    expect(records[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('sinks', () => {
  const record: LogRecord = { time: '2026-01-02T03:04:05.678Z', level: 'warn', event: 'https.tls', msg: 'bad' };

  it('writes one JSON object per line', () => {
    const out = new PassThrough();
    jsonLineSink(out)(record);
    expect(JSON.parse(out.read().toString())).toEqual(record);
  });

  it('writes a readable terminal line', () => {
    const out = new PassThrough();
    prettySink(out)(record);
    expect(out.read().toString()).toBe('03:04:05 WARN  https.tls     bad\n');
  });
});

describe('levels', () => {
  it('knows its four names and labels them at a fixed width', () => {
    expect(['debug', 'info', 'warn', 'error'].every(isLogLevel)).toBe(true);
    expect(isLogLevel('information')).toBe(false);
    expect(levelLabel('info')).toBe('INFO ');
  });
});
