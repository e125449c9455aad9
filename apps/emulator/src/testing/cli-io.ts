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
