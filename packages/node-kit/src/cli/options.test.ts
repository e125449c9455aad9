import { describe, expect, it } from 'vitest';
import { parseOptions } from './options.js';
import { UsageError } from './usage.js';

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'registration-id-template': { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function refuse(args: string[], allowPositionals = false): UsageError {
  try {
    parseOptions(args, { options: OPTIONS, command: 'start', allowPositionals });
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(args)}`);
}

describe('parseOptions', () => {
  it('parses long, short, inline and repeated options and positionals', () => {
    expect(
      parseOptions(
        [
          'start',
          '-p',
          '8443',
          '--host=::1',
          '--json',
          '--registration-id-template',
          'a-{n}',
          '--registration-id-template=b-{n}',
          '--',
          '--not-an-option',
        ],
        { options: OPTIONS, allowPositionals: true },
      ),
    ).toEqual({
      values: { port: '8443', host: '::1', json: true, 'registration-id-template': ['a-{n}', 'b-{n}'] },
      positionals: ['start', '--not-an-option'],
    });
    expect(parseOptions(['-hp', '1'], { options: OPTIONS }).values).toEqual({ help: true, port: '1' });
  });

  it('refuses an unknown option, suggesting the closest known one', () => {
    expect(refuse(['--prot', '1'])).toMatchObject({ message: 'unknown option --prot', suggestion: '--port' });
    expect(refuse(['--registration-id-templat', 'x']).suggestion).toBe('--registration-id-template');
    const far = refuse(['--verbose']);
    expect(far.message).toBe('unknown option --verbose');
    expect(far.suggestion).toBeUndefined();
    expect(refuse(['-x']).message).toBe('unknown option -x');
    expect(refuse(['--prot']).command).toBe('start');
  });

  it('refuses a missing value, and a value that looks like an option unless given inline', () => {
    expect(refuse(['--port']).message).toBe('--port needs a value');
    expect(refuse(['--port', '--json']).message).toBe('--port needs a value');
    expect(refuse(['--port', '-1']).message).toBe(
      '--port needs a value (a value starting with "-" is written --port=-1)',
    );
    expect(parseOptions(['--port=-1'], { options: OPTIONS }).values.port).toBe('-1');
    expect(parseOptions(['--host', '-'], { options: OPTIONS }).values.host).toBe('-');
  });

  it('refuses a value for a switch and arguments that are not options', () => {
    expect(refuse(['--json=yes']).message).toBe('--json takes no value');
    expect(refuse(['extra']).message).toBe('unexpected argument "extra"');
  });

  it('does not treat inherited object keys as options', () => {
    expect(refuse(['--constructor']).message).toBe('unknown option --constructor');
  });
});
