import { PassThrough, Readable } from 'node:stream';
import type { CliIo } from '../cli/main.js';

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
  /** Simulates Ctrl-C: calls the handlers the command subscribed. */
  interrupt(): void;
}

/** In-memory stdio for calling `main` in tests, with a Ctrl-C trigger. */
export function captureIo(
  options: { env?: Record<string, string>; stdin?: string; progressLogIntervalMs?: number } = {},
): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const handlers = new Set<() => void>();
  return {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    env: options.env ?? {},
    ...(options.progressLogIntervalMs !== undefined ? { progressLogIntervalMs: options.progressLogIntervalMs } : {}),
    onInterrupt: (handler) => {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    out: () => out,
    err: () => err,
    interrupt: () => {
      for (const handler of handlers) handler();
    },
  };
}
