import { fstatSync, writeSync } from 'node:fs';

/**
 * How long `finish` waits for a reader that takes none of the output (a stalled pipe) before it
 * gives up on the rest: a reader paused for a few seconds gets every byte, and one that never
 * resumes delays the end of the process by at most this much.
 */
export const FINISH_WAIT_MS = 10_000;
/** While the reader leaves the pipe full, how often the kept bytes are tried again. */
const RETRY_MS = 10;

/** Bytes to a pipe or socket's file descriptor, written in order, none left in a queue the process cannot finish. */
export interface FdWriter {
  /** Writes what the pipe takes now and keeps the rest (copied) for later; `bytes` is free on return. */
  write(bytes: Uint8Array): void;
  /**
   * Writes everything kept, waiting for a reader that leaves the pipe full at most `waitMs`; with
   * bytes left then, they stay kept and are tried again later (they are lost if the process ends).
   */
  finish(waitMs?: number): void;
}

/**
 * process.stdout's or process.stderr's file descriptor when it is a pipe or a socket, else
 * undefined. Those are the streams whose writes Node queues in memory once the pipe is full (libuv
 * writes what fits and keeps the rest until the reader makes room), and a queue the process ends
 * with is lost: process.exit() and an uncaught exception end it without writing it, and an 'exit'
 * handler cannot wait for it. A file (written synchronously) and a terminal (blocking writes) keep
 * no such queue.
 */
export function queuingStdioFd(stream: NodeJS.WritableStream): number | undefined {
  if (stream !== process.stdout && stream !== process.stderr) return undefined;
  const fd = (stream as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return undefined;
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket() ? fd : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes to `fd` with fs.writeSync, never more than the pipe takes: the descriptor is non-blocking
 * (libuv made it so when process.stdout was created), so a full pipe answers EAGAIN at once. What
 * it does not take is kept here, where `finish` (from an 'exit' handler) can still write it, and
 * tried again every few milliseconds on a timer that does not keep the process alive. A write that
 * fails otherwise (EPIPE: the reader is gone) is handed to `onError` once; later bytes are dropped.
 */
export function createFdWriter(fd: number, onError: (err: NodeJS.ErrnoException) => void): FdWriter {
  const kept: Uint8Array[] = [];
  let timer: NodeJS.Timeout | undefined;
  let failed = false;

  /** Writes from `bytes` until the pipe is full: how many it took, or undefined once a write failed. */
  const writeSome = (bytes: Uint8Array): number | undefined => {
    let written = 0;
    while (written < bytes.length) {
      try {
        written += writeSync(fd, bytes, written, bytes.length - written);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
        fail(err as NodeJS.ErrnoException);
        return undefined;
      }
    }
    return written;
  };

  const fail = (err: NodeJS.ErrnoException): void => {
    failed = true;
    kept.length = 0;
    clearTimeout(timer);
    timer = undefined;
    onError(err);
  };

  /** Writes kept bytes until the pipe is full; true when none are left. */
  const drain = (): boolean => {
    while (kept.length > 0) {
      const head = kept[0] as Uint8Array;
      const written = writeSome(head);
      if (written === undefined) return true;
      if (written < head.length) {
        kept[0] = head.subarray(written);
        return false;
      }
      kept.shift();
    }
    return true;
  };

  const retry = (): void => {
    timer = undefined;
    if (!drain()) schedule();
  };
  const schedule = (): void => {
    timer ??= setTimeout(retry, RETRY_MS);
    // Not what keeps the process alive: at its end, the 'exit' handler's `finish` writes the rest.
    timer.unref();
  };

  return {
    write(bytes) {
      if (failed) return;
      if (kept.length === 0) {
        const written = writeSome(bytes);
        if (written === undefined || written === bytes.length) return;
        kept.push(Buffer.from(bytes.subarray(written)));
      } else {
        kept.push(Buffer.from(bytes));
      }
      schedule();
    },
    finish(waitMs = FINISH_WAIT_MS) {
      const deadline = Date.now() + waitMs;
      // Atomics.wait sleeps without spinning (Node allows it on the main thread).
      const nap = new Int32Array(new SharedArrayBuffer(4));
      while (!drain()) {
        const left = deadline - Date.now();
        if (left <= 0) {
          schedule();
          return;
        }
        Atomics.wait(nap, 0, 0, Math.min(RETRY_MS, left));
      }
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
