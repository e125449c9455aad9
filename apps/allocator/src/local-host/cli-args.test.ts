import { describe, expect, it } from 'vitest';
import { parseCliArgs } from './cli-args.js';

describe('parseCliArgs', () => {
  it('defaults to port 7071, both loopbacks and an automatic output format', () => {
    expect(parseCliArgs([])).toEqual({
      ok: true,
      options: {
        appDir: undefined,
        functionName: undefined,
        port: 7071,
        host: undefined,
        format: undefined,
        help: false,
      },
    });
  });

  it('reads --port, -p, --host, --json, --pretty and --help', () => {
    expect(parseCliArgs(['--port', '8080'])).toMatchObject({ ok: true, options: { port: 8080 } });
    expect(parseCliArgs(['-p', '0'])).toMatchObject({ ok: true, options: { port: 0 } });
    expect(parseCliArgs(['--port=65535', '--host', '0.0.0.0'])).toMatchObject({
      ok: true,
      options: { port: 65535, host: '0.0.0.0' },
    });
    expect(parseCliArgs(['--json'])).toMatchObject({ ok: true, options: { format: 'json' } });
    expect(parseCliArgs(['--pretty'])).toMatchObject({ ok: true, options: { format: 'human' } });
    expect(parseCliArgs(['-h'])).toMatchObject({ ok: true, options: { help: true } });
  });

  it('reads an optional start command, an app folder and --function', () => {
    expect(parseCliArgs(['start'])).toMatchObject({ ok: true, options: { appDir: undefined } });
    expect(parseCliArgs(['start', '../my-app', '-p', '0'])).toMatchObject({
      ok: true,
      options: { appDir: '../my-app', port: 0 },
    });
    expect(parseCliArgs(['.', '--function', 'assign'])).toMatchObject({
      ok: true,
      options: { appDir: '.', functionName: 'assign' },
    });
  });

  it('accepts the -- that pnpm forwards before script arguments', () => {
    expect(parseCliArgs(['--', '--port', '9000'])).toMatchObject({ ok: true, options: { port: 9000 } });
  });

  it('rejects bad ports with a message naming the value', () => {
    for (const bad of ['abc', '-1', '65536', '80.5', '', '1e3']) {
      expect(parseCliArgs([`--port=${bad}`])).toEqual({
        ok: false,
        error: `Invalid --port '${bad}': expected an integer from 0 to 65535.`,
      });
    }
  });

  it('rejects unknown options, positionals, an empty host and contradictory formats', () => {
    expect(parseCliArgs(['--prot', '1'])).toMatchObject({ ok: false, error: expect.stringContaining("'--prot'") });
    expect(parseCliArgs(['start', 'a', 'b'])).toMatchObject({ ok: false, error: expect.stringContaining("'b'") });
    expect(parseCliArgs(['--function', ''])).toEqual({ ok: false, error: 'Option --function is empty.' });
    expect(parseCliArgs(['--host', ' '])).toEqual({ ok: false, error: 'Option --host is empty.' });
    expect(parseCliArgs(['--json', '--pretty'])).toEqual({
      ok: false,
      error: 'Options --json and --pretty exclude each other.',
    });
    expect(parseCliArgs(['--port'])).toMatchObject({ ok: false });
    expect(parseCliArgs(['--port', '-1'])).toMatchObject({ ok: false, error: expect.stringContaining('--port') });
  });
});
