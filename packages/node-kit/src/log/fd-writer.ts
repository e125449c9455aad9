import { fstatSync, writeSync } from 'node:fs';

/**
 * How long `finish` waits for a reader that takes none of the output (a stalled pipe) before it
 * gives up on the rest: a reader paused for a few seconds gets every byte, and one that never
 * resumes delays the end of the process by at most this much.
 */
export const FINISH_WAIT_MS = 10_000;
/** While the reader leaves the pipe full, how often the kept bytes are tried again. */
const RETRY_MS = 10;

/**
 * The most bytes kept for a reader that has fallen behind (4 MiB): past it, whole writes are dropped
 * rather than kept (see `write`). A reader that pauses for a moment loses nothing (a busy allocator
 * logs about 2 KB a request: some 2,000 requests' lines), and one that stops reading for good (a
 * suspended pager, a log shipper that hangs) costs the process 4 MiB, not all it ever logs.
 * Dropping, not blocking: a server that waited for its log reader would stop answering with it.
 */
export const DEFAULT_MAX_KEPT_BYTES = 4 * 1024 * 1024;

export interface FdWriterOptions {
  /** At most this many bytes kept for the reader (default DEFAULT_MAX_KEPT_BYTES). */
  maxKeptBytes?: number;
  /**
   * Called when every kept byte has been written after the reader had left the pipe full (so also
   * after every dropped write), from the retry timer; not from `finish`.
   */
  onDrain?: () => void;
}

/** Bytes to a pipe or socket's file descriptor, written in order, none left in a queue the process cannot finish. */
export interface FdWriter {
  /**
   * Writes what the pipe takes now and keeps the rest (copied) for later; `bytes` is free on return.
   * False when `bytes` was dropped whole, nothing of it written: the pipe was full and keeping it
   * would take the kept bytes over `maxKeptBytes`. A write partly written is always kept whole, so
   * that a caller writing whole lines never has one cut.
   */
  write(bytes: Uint8Array): boolean;
  /**
   * Writes everything kept, waiting for a reader that leaves the pipe full at most `waitMs`; with
   * bytes left then, they stay kept and are tried again later (they are lost if the process ends).
   * True when nothing is left.
   */
  finish(waitMs?: number): boolean;
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
 * tried again every few milliseconds on a timer that does not keep the process alive; up to
 * `maxKeptBytes`, past which whole writes are dropped (`write` says so: sonic-boom's `maxLength`
 * does the same, and its callers count and report what was dropped, as the line writer does). A write that
 * fails otherwise (EPIPE: the reader is gone) is handed to `onError` once; later bytes are dropped.
 */
export function createFdWriter(
  fd: number,
  onError: (err: NodeJS.ErrnoException) => void,
  options: FdWriterOptions = {},
): FdWriter {
  const maxKeptBytes = options.maxKeptBytes ?? DEFAULT_MAX_KEPT_BYTES;
  const kept: Uint8Array[] = [];
  let keptBytes = 0;
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
    keptBytes = 0;
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
      keptBytes -= written;
      if (written < head.length) {
        kept[0] = head.subarray(written);
        return false;
      }
      kept.shift();
    }
    return true;
  };

  const keep = (bytes: Uint8Array): void => {
    kept.push(Buffer.from(bytes));
    keptBytes += bytes.length;
    schedule();
  };

  const retry = (): void => {
    timer = undefined;
    if (!drain()) schedule();
    else if (!failed) options.onDrain?.();
  };
  const schedule = (): void => {
    timer ??= setTimeout(retry, RETRY_MS);
    // Not what keeps the process alive: at its end, the 'exit' handler's `finish` writes the rest.
    timer.unref();
  };

  return {
    write(bytes) {
      // After a failed write (the reader is gone) every byte is dropped without a word: nobody reads.
      if (failed) return true;
      if (kept.length === 0) {
        const written = writeSome(bytes);
        if (written === undefined || written === bytes.length) return true;
        // Nothing of it taken and too large to keep: dropped whole (onDrain follows, as after any
        // drop, on the retry timer). Partly written: kept whole.
        if (written === 0 && bytes.length > maxKeptBytes) {
          schedule();
          return false;
        }
        keep(bytes.subarray(written));
        return true;
      }
      if (keptBytes + bytes.length > maxKeptBytes) return false;
      keep(bytes);
      return true;
    },
    finish(waitMs = FINISH_WAIT_MS) {
      const deadline = Date.now() + waitMs;
      // Atomics.wait sleeps without spinning (Node allows it on the main thread).
      const nap = new Int32Array(new SharedArrayBuffer(4));
      while (!drain()) {
        const left = deadline - Date.now();
        if (left <= 0) {
          schedule();
          return false;
        }
        Atomics.wait(nap, 0, 0, Math.min(RETRY_MS, left));
      }
      clearTimeout(timer);
      timer = undefined;
      return true;
    },
  };
}
