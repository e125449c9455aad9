import { createFdWriter, DEFAULT_MAX_KEPT_BYTES, type FdWriter, queuingStdioFd } from './fd-writer.js';

/** Writes log lines to a stream, coalesced: see `createLineWriter`. */
export interface LineWriter {
  /** Queues one line (without its newline). */
  write(line: string): void;
  /**
   * Writes what is queued now; call it before exiting and before writing to the stream directly.
   * To a pipe or socket (process.stdout/stderr), it returns once the reader has taken it all, or
   * after at most 10 s of a reader taking nothing (FINISH_WAIT_MS).
   */
  flush(): void;
  /**
   * From now on every other write to the stream (console.log, code that calls `stream.write`) goes
   * through this writer too: after the lines queued before it, before those queued after it, kept and
   * finished at exit like them. Without it such writes reach the stream at once, ahead of the turn's
   * queued lines, and to a pipe whose reader has stalled they wait in the stream's own queue, apart
   * from this writer's kept bytes (out of order when both resume, a line of one cut by the other, and
   * lost at process.exit()). Such a write is not coalesced: it costs the write it cost before.
   */
  captureStreamWrites(): void;
}

export interface LineWriterOptions {
  /** Queued characters that trigger a write at once rather than at the end of the turn (default 64 Ki). */
  maxPending?: number;
  /**
   * Encode into one buffer reused from write to write (see below). Only for a stream that is done with
   * a chunk once its `writableLength` is back to 0 after `write`: a file, pipe, socket or terminal
   * stream of Node's own. Default: true for process.stdout and process.stderr, false otherwise.
   */
  reuseBuffer?: boolean;
  /**
   * To a pipe or socket (process.stdout/stderr), the most bytes kept for a reader that has fallen
   * behind (default 4 MiB, DEFAULT_MAX_KEPT_BYTES in fd-writer.ts); past it, whole lines are dropped
   * and counted until the reader has taken all that was kept, and then `droppedLine(count)` is
   * written in their place. No line is ever cut.
   */
  maxKeptBytes?: number;
  /**
   * The line (without its newline) written once writing resumes after `count` lines were dropped, in
   * the format of the others (the allocator writes a JSON record). Default: plain text saying so.
   */
  droppedLine?: (count: number) => string;
}

/**
 * Lines go to `stream` in one `write` per event-loop turn instead of one each. process.stdout is
 * synchronous for files and pipes, so a server logging several lines per request spent a quarter of
 * its time in write system calls (allocator host profile, issue #13); coalesced, a busy turn's lines
 * cost one call. Nothing is reordered; lines queued when the process exits are lost unless
 * `flush()` runs in an 'exit' handler (the CLIs do that), and lines are dropped (counted, then
 * reported in one line) only while the reader of a pipe is more than `maxKeptBytes` behind. Hand-written rather than e.g. sonic-boom,
 * which takes over the file descriptor for every kind of output and would replace process.stdout's
 * TTY handling; here only a pipe or socket is written to directly (below), and a failed write still
 * reaches the stream's 'error' listeners, which the CLIs use for a closed pipe.
 *
 * process.stdout/stderr on a pipe or socket are written through their file descriptor (fd-writer.ts)
 * instead of the stream: once the reader lets the pipe fill, the stream queues the rest in libuv,
 * where process.exit() or an uncaught exception drops it and an 'exit' handler cannot finish it (a
 * reader stalled for a moment lost the end of the output, mid-line). The fd writer keeps what the
 * pipe does not take where `flush()` can write it at exit.
 *
 * For process.stdout and process.stderr the lines are UTF-8 encoded into one buffer kept from write
 * to write. `stream.write(string)` made a new Buffer of the whole chunk each time (64 KiB at a time
 * under load: fresh memory to fault in and an external allocation for the GC to track), which cost
 * about as much as the encoding itself (issue #13). The buffer is only reused when the stream is done
 * with it: those streams either write a chunk at once (a file; a pipe or terminal with room) or
 * queue it, which `writableLength` shows, and then the buffer stays theirs and the next write gets a
 * new one. Other streams get strings by default, since one may keep a chunk after its callback (a
 * PassThrough does).
 */
export function createLineWriter(stream: NodeJS.WritableStream, options: LineWriterOptions = {}): LineWriter {
  const maxPending = options.maxPending ?? 64 * 1024;
  const maxKeptBytes = options.maxKeptBytes ?? DEFAULT_MAX_KEPT_BYTES;
  const droppedLine =
    options.droppedLine ??
    ((count: number) =>
      `${count} log line(s) dropped: the reader of this output fell more than ${maxKeptBytes} bytes behind`);
  const fd = queuingStdioFd(stream);
  // The stream's own write, kept so that captureStreamWrites can replace the property.
  const streamWrite = stream.write.bind(stream) as (
    chunk: string | Uint8Array,
    encoding?: BufferEncoding,
    callback?: (err?: Error | null) => void,
  ) => boolean;
  /**
   * Lines dropped since the reader fell more than maxKeptBytes behind, not reported yet: from the
   * first dropped line until the reader has taken every kept byte, every line is dropped.
   */
  let dropped = 0;
  /** Writes `droppedLine` once the reader has taken every kept byte (before any later line). */
  const reportDropped = (): void => {
    if (dropped === 0 || !direct) return;
    if (direct.write(Buffer.from(`${droppedLine(dropped)}\n`, 'utf8'))) dropped = 0;
  };
  // A failed write goes where the stream's own would: its 'error' listeners (EPIPE: the reader is gone).
  const direct: FdWriter | undefined =
    fd === undefined
      ? undefined
      : createFdWriter(fd, (err) => stream.emit('error', err), { maxKeptBytes, onDrain: reportDropped });
  // The fd writer copies what it keeps: the buffer is always free again after a write.
  const reuse =
    direct !== undefined || (options.reuseBuffer ?? (stream === process.stdout || stream === process.stderr));
  // Room for a usual chunk (maxPending characters and the line that passed the mark) at the worst
  // case of 3 UTF-8 bytes per UTF-16 unit; a larger chunk is written as a string.
  const slabBytes = 4 * maxPending;
  let slab: Buffer | undefined;
  // Lines kept apart and joined once per write rather than appended to one string (`pending += line`
  // grew one tree of concatenations that the write flattened piece by piece).
  let pending: string[] = [];
  let pendingLength = 0;
  let scheduled: NodeJS.Immediate | undefined;
  /** Writes the queued lines (a turn's, or maxPending's worth). */
  const writeQueued = (): void => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    pendingLength = 0;
    if (dropped > 0) {
      // Lines were dropped and the reader has not taken all that was kept yet: these go too, so that
      // the output has one gap, reported in one line, however long the reader stays behind.
      dropped += lines.length;
      return;
    }
    const count = lines.length;
    lines.push('');
    const chunk = lines.join('\n');
    if (!reuse || chunk.length * 3 > slabBytes) {
      if (direct) taken(direct.write(Buffer.from(chunk, 'utf8')), count);
      else streamWrite(chunk);
      return;
    }
    slab ??= Buffer.allocUnsafeSlow(slabBytes);
    const bytes = slab.write(chunk, 0, 'utf8');
    if (direct) {
      taken(direct.write(slab.subarray(0, bytes)), count);
      return;
    }
    streamWrite(slab.subarray(0, bytes));
    if ((stream as { writableLength?: number }).writableLength !== 0) slab = undefined;
  };
  /** After a chunk of `count` lines went to the fd writer: counts them if it dropped them. */
  const taken = (written: boolean, count: number): void => {
    if (!written) dropped += count;
  };
  /** A write to the stream from elsewhere, in its place among the lines (see captureStreamWrites). */
  const writeOther = (
    chunk: string | Uint8Array,
    encoding: BufferEncoding | undefined,
    callback: ((err?: Error | null) => void) | undefined,
  ): void => {
    writeQueued();
    if (!direct) {
      streamWrite(chunk, encoding, callback);
      return;
    }
    const lines = Math.max(1, countNewlines(chunk));
    if (dropped > 0) dropped += lines;
    else taken(direct.write(typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk), lines);
    if (callback) process.nextTick(callback, null);
  };
  return {
    captureStreamWrites() {
      (stream as { write: unknown }).write = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
        const cb = typeof encoding === 'function' ? encoding : callback;
        const enc = typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined;
        // Anything else gets the stream's own answer (its argument errors).
        if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
          return (streamWrite as (...args: unknown[]) => boolean)(chunk, encoding, callback);
        }
        writeOther(chunk, enc, typeof cb === 'function' ? (cb as (err?: Error | null) => void) : undefined);
        return true;
      };
    },
    write(line) {
      pending.push(line);
      pendingLength += line.length + 1;
      if (pendingLength >= maxPending) writeQueued();
      else scheduled ??= setImmediate(writeQueued);
    },
    flush() {
      writeQueued();
      // The notice only once the reader has taken what was kept: a reader that never reads does
      // not hold the process a second FINISH_WAIT_MS for it.
      if (direct?.finish() && dropped > 0) {
        reportDropped();
        direct.finish();
      }
    },
  };
}

function countNewlines(chunk: string | Uint8Array): number {
  let count = 0;
  if (typeof chunk === 'string') {
    for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', at + 1)) count++;
  } else {
    for (const byte of chunk) if (byte === 0x0a) count++;
  }
  return count;
}
