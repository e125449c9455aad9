import { PassThrough } from 'node:stream';
import type { CliIo } from '../cli/run.js';
import { runCli } from '../cli/run.js';
import type { Emulator } from '../emulator.js';

/** The CLI's streams, captured (stdout is not a terminal), with what it printed so far. */
export function captureIo(untilShutdown?: (emulator: Emulator) => Promise<void>): {
  io: CliIo;
  out: () => string;
  err: () => string;
} {
  const stdout = Object.assign(new PassThrough(), { isTTY: false });
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { io: { stdout, stderr, ...(untilShutdown ? { untilShutdown } : {}) }, out: () => out, err: () => err };
}

/** `dps-emulator <argv>` through the CLI's own entry point: its exit code and output. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const run = captureIo();
  const code = await runCli(argv, run.io);
  return { code, out: run.out(), err: run.err() };
}

/**
 * `dps-emulator start` on `stateDir` as the CLI tests run it: every listener on a free port, no
 * web view (its default port collides between parallel runs), devices polling at once; `extra`
 * after. `--no-https`/`--no-amqp`/`--web-port` in `extra` replace the matching default.
 */
export function startArgs(stateDir: string, ...extra: string[]): string[] {
  const has = (flag: string) => extra.includes(flag);
  return [
    'start',
    ...['--state-dir', stateDir, '--mqtt-port', '0'],
    ...(has('--no-https') ? [] : ['--https-port', '0']),
    ...(has('--no-amqp') ? [] : ['--amqp-port', '0']),
    ...(has('--web-port') ? [] : ['--no-web']),
    ...['--retry-after', '0'],
    ...extra,
  ];
}

/** `dps-emulator <argv>` in this process while `during` runs against it; then it stops. */
export async function whileRunning(
  argv: readonly string[],
  during: (emulator: Emulator) => Promise<void>,
): Promise<{ code: number; out: string; err: string }> {
  const run = captureIo(during);
  const code = await runCli(argv, run.io);
  return { code, out: run.out(), err: run.err() };
}
