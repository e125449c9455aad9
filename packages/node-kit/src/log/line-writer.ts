/** Writes log lines to a stream, coalesced: see `createLineWriter`. */
export interface LineWriter {
  /** Queues one line (without its newline). */
  write(line: string): void;
  /** Writes what is queued now; call it before exiting and before writing to the stream directly. */
  flush(): void;
}

export interface LineWriterOptions {
  /** Queued characters that trigger a write at once rather than at the end of the turn (default 64 Ki). */
  maxPending?: number;
}

/**
 * Lines go to `stream` in one `write` per event-loop turn instead of one each. process.stdout is
 * synchronous for files and pipes, so a server logging several lines per request spent a quarter of
 * its time in write system calls (allocator host profile, issue #13); coalesced, a busy turn's lines
 * cost one call. Nothing is reordered or dropped; lines queued when the process exits are lost unless
 * `flush()` runs in an 'exit' handler (the CLIs do that). Hand-written rather than e.g. sonic-boom:
 * that writes to a file descriptor of its own, bypassing process.stdout (its TTY handling and the
 * 'error' event the CLIs use for a closed pipe), for what is a dozen lines here.
 */
export function createLineWriter(stream: NodeJS.WritableStream, options: LineWriterOptions = {}): LineWriter {
  const maxPending = options.maxPending ?? 64 * 1024;
  let pending = '';
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    stream.write(chunk);
  };
  return {
    write(line) {
      pending += `${line}\n`;
      if (pending.length >= maxPending) flush();
      else scheduled ??= setImmediate(flush);
    },
    flush,
  };
}
