import { UsageError } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { parseCliArgs } from './cli-args.js';

function refused(argv: string[]): UsageError {
  try {
    parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(argv)}`);
}

describe('parseCliArgs', () => {
  it('defaults to port 7071, both loopbacks and an automatic output format', () => {
    expect(parseCliArgs([])).toEqual({
      appDir: undefined,
      functionName: undefined,
      port: 7071,
      host: undefined,
      format: undefined,
      logLevel: undefined,
      help: false,
    });
  });

  it('reads --port, -p, --host, --json, --pretty and --help', () => {
    expect(parseCliArgs(['--port', '8080'])).toMatchObject({ port: 8080 });
    expect(parseCliArgs(['-p', '0'])).toMatchObject({ port: 0 });
    expect(parseCliArgs(['--port=65535', '--host', '0.0.0.0'])).toMatchObject({ port: 65535, host: '0.0.0.0' });
    expect(parseCliArgs(['--json'])).toMatchObject({ format: 'json' });
    expect(parseCliArgs(['--pretty'])).toMatchObject({ format: 'human' });
    expect(parseCliArgs(['-h'])).toMatchObject({ help: true });
  });

  it('reads --log-level, naming the levels when it is not one', () => {
    expect(parseCliArgs(['--log-level', 'warn'])).toMatchObject({ logLevel: 'warn' });
    expect(parseCliArgs(['--log-level=debug'])).toMatchObject({ logLevel: 'debug' });
    expect(refused(['--log-level', 'warning'])).toMatchObject({
      message: '--log-level must be debug, info, warn or error, not "warning"',
      suggestion: '--log-level warn',
      command: 'start',
    });
  });

  it('reads an optional start command, an app folder and --function', () => {
    expect(parseCliArgs(['start'])).toMatchObject({ appDir: undefined });
    expect(parseCliArgs(['start', '../my-app', '-p', '0'])).toMatchObject({ appDir: '../my-app', port: 0 });
    expect(parseCliArgs(['.', '--function', 'assign'])).toMatchObject({ appDir: '.', functionName: 'assign' });
  });

  it('accepts the -- that pnpm forwards before script arguments', () => {
    expect(parseCliArgs(['--', '--port', '9000'])).toMatchObject({ port: 9000 });
  });

  it('rejects bad ports with a message naming the value', () => {
    for (const bad of ['abc', '-1', '65536', '80.5', '', '1e3']) {
      expect(refused([`--port=${bad}`]).message).toBe(`Invalid --port '${bad}': expected an integer from 0 to 65535.`);
    }
  });

  it('rejects unknown options, positionals, an empty host and contradictory formats', () => {
    expect(refused(['--prot', '1'])).toMatchObject({ message: 'unknown option --prot', suggestion: '--port' });
    expect(refused(['start', 'a', 'b']).message).toContain("'b'");
    expect(refused(['--function', '']).message).toBe('Option --function is empty.');
    expect(refused(['--host', ' ']).message).toBe('Option --host is empty.');
    expect(refused(['--json', '--pretty']).message).toBe('Options --json and --pretty exclude each other.');
    expect(refused(['--port']).message).toBe('--port needs a value');
    expect(refused(['--port', '-1']).message).toContain('--port');
    expect(refused(['--json', '--pretty']).command).toBe('start');
  });
});
