import type { Readable, Writable } from 'node:stream';
import type { Env } from './args.js';

/** What a command talks to: the process's streams and environment, or in-memory ones in tests. */
export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
  env: Env;
  /** Subscribes to Ctrl-C (SIGINT); returns the unsubscribe function. */
  onInterrupt?: (handler: () => void) => () => void;
  /**
   * Subscribes to SIGTERM (a service manager, `timeout` or `kill` stopping it); returns the
   * unsubscribe function. `register --stay` and `fleet` listen: the other commands keep SIGTERM's default.
   */
  onTerminate?: (handler: () => void) => () => void;
  /** How often `fleet` logs its progress when stderr is not a terminal; default 15 s (tests shorten it). */
  progressLogIntervalMs?: number;
}

export const EXIT = { ok: 0, notAssigned: 1, usage: 2, interrupted: 130 } as const;

/** Subscribes `onFirst` to Ctrl-C when the caller can deliver it; returns the unsubscribe function. */
export function interruptible(io: CliIo, onFirst: () => void): () => void {
  return io.onInterrupt?.(onFirst) ?? (() => {});
}
