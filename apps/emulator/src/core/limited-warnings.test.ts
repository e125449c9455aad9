import { createLogger, type LogRecord } from '@dpskit/node-kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { limitWarnings } from './limited-warnings.js';

const KINDS = {
  'x.refused': { summary: 'request(s) refused', countBy: 'reason', fields: { status: 401 } },
  'x.unrouted': { summary: 'request(s) unrouted', countBy: 'status' },
};

function bed() {
  const logs: LogRecord[] = [];
  const clock = { now: new Date('2026-12-04T18:00:00Z') };
  const limited = limitWarnings(
    createLogger((record) => logs.push(record), 'debug'),
    KINDS,
    { now: () => clock.now },
  );
  const later = (ms: number) => {
    clock.now = new Date(clock.now.getTime() + ms);
  };
  return { logs, limited, later };
}

describe('limitWarnings', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs the first warning of a kind in full, counts the rest by key, and logs the count at flush', () => {
    const { logs, limited } = bed();
    for (let i = 0; i < 5; i++) limited.log.warn('x.refused', `refused ${i}`, { reason: 'expired', status: 401 });
    for (let i = 0; i < 3; i++) limited.log.warn('x.refused', `refused m${i}`, { reason: 'missing', status: 401 });
    limited.log.warn('x.refused', 'no reason', {});
    expect(logs).toMatchObject([{ level: 'warn', event: 'x.refused', msg: 'refused 0', reason: 'expired' }]);
    limited.flush();
    expect(logs).toHaveLength(2);
    expect(logs[1]).toMatchObject({
      level: 'warn',
      event: 'x.refused',
      msg: '8 more request(s) refused since 2026-12-04T18:00:00.000Z, not logged one by one (expired 4, missing 3, other 1)',
      status: 401,
      suppressed: 8,
      reasons: { expired: 4, missing: 3, other: 1 },
    });
    // Nothing held: a second flush logs nothing.
    limited.flush();
    expect(logs).toHaveLength(2);
  });

  it('logs the count before the next full line, an interval later', () => {
    const { logs, limited, later } = bed();
    limited.log.warn('x.unrouted', 'first', { status: 404 });
    later(400);
    limited.log.warn('x.unrouted', 'held', { status: 405 });
    later(599);
    limited.log.warn('x.unrouted', 'held too', { status: 404 });
    expect(logs.map((l) => l.msg)).toEqual(['first']);
    later(1);
    limited.log.warn('x.unrouted', 'next', { status: 404 });
    expect(logs.map((l) => l.msg)).toEqual([
      'first',
      '2 more request(s) unrouted since 2026-12-04T18:00:00.400Z, not logged one by one (404 1, 405 1)',
      'next',
    ]);
  });

  it('keeps kinds apart and passes other events and levels through', () => {
    const { logs, limited } = bed();
    limited.log.warn('x.refused', 'refused', { reason: 'expired' });
    limited.log.warn('x.unrouted', 'unrouted', { status: 404 });
    for (let i = 0; i < 3; i++) limited.log.warn('other.event', `other ${i}`);
    limited.log.info('x.refused', 'an info line');
    limited.log.error('x.unrouted', 'an error line');
    limited.log.debug('x.unrouted', 'a debug line');
    expect(logs.map((l) => l.msg)).toEqual([
      'refused',
      'unrouted',
      'other 0',
      'other 1',
      'other 2',
      'an info line',
      'an error line',
      'a debug line',
    ]);
  });

  it('logs a count an interval after the first held, by a timer, when no other line comes', () => {
    vi.useFakeTimers();
    const { logs, limited } = bed();
    limited.log.warn('x.unrouted', 'first', { status: 404 });
    limited.log.warn('x.unrouted', 'held', { status: 404 });
    vi.advanceTimersByTime(999);
    expect(logs).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(logs.at(-1)).toMatchObject({ suppressed: 1, reasons: { '404': 1 } });
    limited.flush();
    expect(logs).toHaveLength(2);
  });

  it('counts by the first of several fields a warning has', () => {
    const logs: LogRecord[] = [];
    const limited = limitWarnings(
      createLogger((record) => logs.push(record), 'debug'),
      { 'x.protocol': { summary: 'client(s) refused', countBy: ['protocol', 'code'] } },
      { now: () => new Date('2026-12-04T18:00:00Z') },
    );
    limited.log.warn('x.protocol', 'first', { protocol: 'http' });
    limited.log.warn('x.protocol', 'http', { protocol: 'http', code: 'ignored' });
    limited.log.warn('x.protocol', 'not TLS', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    limited.log.warn('x.protocol', 'neither', {});
    limited.flush();
    expect(logs.at(-1)).toMatchObject({
      suppressed: 3,
      reasons: { http: 1, ERR_SSL_WRONG_VERSION_NUMBER: 1, other: 1 },
    });
  });

  it('bounds the keys it counts: past 32 distinct, the rest are other', () => {
    const { logs, limited } = bed();
    limited.log.warn('x.refused', 'first', { reason: 'r-first' });
    for (let i = 0; i < 40; i++) limited.log.warn('x.refused', 'held', { reason: `r-${i}-${'x'.repeat(100)}` });
    limited.flush();
    const reasons = logs[1]?.reasons as Record<string, number>;
    expect(Object.keys(reasons)).toHaveLength(33);
    expect(reasons.other).toBe(8);
    expect(Math.max(...Object.keys(reasons).map((k) => k.length))).toBe(64);
  });
});
