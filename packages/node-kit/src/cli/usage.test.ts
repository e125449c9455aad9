import { describe, expect, it } from 'vitest';
import { closestMatch } from './suggest.js';
import { formatUsageError, oneOf, parseCommandLine, UsageError, unknownCommand } from './usage.js';

describe('formatUsageError', () => {
  it('names the program, the problem, the suggestion and the help to read', () => {
    expect(
      formatUsageError(
        'device-sim',
        new UsageError('unknown option --coutn', { command: 'fleet', suggestion: '--count' }),
      ),
    ).toBe(
      'device-sim: unknown option --coutn\nDid you mean --count?\nRun "device-sim fleet --help" for the options.\n',
    );
    expect(formatUsageError('dps-emulator', new UsageError('--mqtt-port needs a value'))).toBe(
      'dps-emulator: --mqtt-port needs a value\nRun "dps-emulator --help" for the options.\n',
    );
  });
});

describe('parseCommandLine', () => {
  const stderr = () => {
    let text = '';
    return { write: (chunk: string) => (text += chunk), text: () => text };
  };

  it('hands back what the parser returned, writing nothing', () => {
    const err = stderr();
    expect(parseCommandLine('dps-emulator', err, () => ({ command: 'start' }))).toEqual({
      ok: true,
      value: { command: 'start' },
    });
    expect(err.text()).toBe('');
  });

  it('reports a usage error as every CLI does and answers exit code 2', () => {
    const err = stderr();
    const parsed = parseCommandLine('dpskit-allocator', err, () => {
      throw new UsageError('unknown option --prot', { command: 'start', suggestion: '--port' });
    });
    expect(parsed).toEqual({ ok: false, exitCode: 2 });
    expect(err.text()).toBe(
      'dpskit-allocator: unknown option --prot\nDid you mean --port?\nRun "dpskit-allocator start --help" for the options.\n',
    );
  });

  it('lets any other error through: a bug is not a usage error', () => {
    expect(() =>
      parseCommandLine('device-sim', stderr(), () => {
        throw new TypeError('boom');
      }),
    ).toThrow(TypeError);
  });
});

describe('suggestions', () => {
  it('finds near misses only', () => {
    expect(closestMatch('strat', ['start'])).toBe('start');
    expect(closestMatch('regster', ['register', 'fleet', 'keys'])).toBe('register');
    expect(closestMatch('provision', ['register', 'fleet', 'keys'])).toBeUndefined();
    expect(closestMatch('x', [])).toBeUndefined();
  });

  it('suggests the closest command and the closest choice of a value', () => {
    expect(unknownCommand('strat', ['start'])).toMatchObject({
      message: 'unknown command "strat"',
      suggestion: 'start',
    });
    expect(oneOf('--log-format', 'json', ['pretty', 'json'])).toBe('json');
    expect(() => oneOf('--log-format', 'jsno', ['pretty', 'json'])).toThrow(
      '--log-format must be pretty or json, not "jsno"',
    );
    let thrown: unknown;
    try {
      oneOf('--log-level', 'warning', ['debug', 'info', 'warn', 'error'], { command: 'start' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({
      message: '--log-level must be debug, info, warn or error, not "warning"',
      suggestion: '--log-level warn',
      command: 'start',
    });
  });
});
