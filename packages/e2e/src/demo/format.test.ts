import type { AllocatorLogRecord } from '@dpskit/allocator';
import { describe, expect, it } from 'vitest';
import { commandLine, logsPane, styler } from './format.js';

describe('logsPane', () => {
  it('keeps function lines and the host Executing/Executed lines, portal style', () => {
    const records: AllocatorLogRecord[] = [
      {
        time: '2026-01-01T00:00:00.000Z',
        level: 'info',
        source: 'host',
        msg: 'Listening on http://localhost:1',
      },
      {
        time: '2026-01-01T00:00:01.000Z',
        level: 'info',
        source: 'host',
        msg: "Executing 'Functions.allocate' (Id=1)",
      },
      {
        time: '2026-01-01T00:00:01.100Z',
        level: 'warn',
        source: 'function',
        msg: 'Rejected',
        data: { reason: 'Unrecognized device registration.' },
      },
      { time: '2026-01-01T00:00:01.200Z', level: 'warn', source: 'host', msg: 'HTTP', data: { status: 400 } },
      {
        time: '2026-01-01T00:00:01.300Z',
        level: 'info',
        source: 'function',
        msg: 'Request.Body',
        data: { body: { linkedHubs: [] } },
      },
    ];
    expect(logsPane(records)).toEqual([
      "2026-01-01T00:00:01.000 [Information] Executing 'Functions.allocate' (Id=1)",
      '2026-01-01T00:00:01.100 [Warning] Rejected: Unrecognized device registration.',
      '2026-01-01T00:00:01.300 [Information] Request.Body: {"linkedHubs":[]}',
    ]);
  });
});

describe('commandLine', () => {
  it('quotes what a shell would split', () => {
    expect(commandLine(['register', '--payload', '{"a":"b c"}', "it's"])).toBe(
      `device-sim register --payload '{"a":"b c"}' 'it'\\''s'`,
    );
  });
});

describe('styler', () => {
  it('adds no escapes when color is off', () => {
    expect(styler(false).ok('x')).toBe('x');
    expect(styler(true).ok('x')).toBe('\x1b[32mx\x1b[39m');
  });
});
