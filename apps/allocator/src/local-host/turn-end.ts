import type { ServerResponse } from 'node:http';

/**
 * Ends `res` with `body` at the end of this event-loop turn, together with every other answer of
 * the turn, instead of at once. The head is the caller's to write first (`writeHead`), so that
 * `headersSent` and the status are settled when the request's handling returns.
 *
 * Why: ending a response writes it to the client's socket, and a client waiting on another core
 * (autocannon, the emulator's webhook client) is woken by that write. On this 2-core VM the wake-up
 * of an idle core is an inter-processor interrupt that the writer pays for: perf of the host under
 * autocannon -c 50 put 8 µs of every request at warn (12 at info) in `_raw_spin_unlock_irqrestore`
 * under `sock_def_readable`, against 1.7 for bare node:http (issue #13). The host spent a request's
 * worth of work, answered, and the client, done with that answer long before the next, went back to
 * sleep: one wake-up per request. The requests the poll phase hands over in one turn are answered
 * together once it is done (setImmediate runs right after it), so the client is woken once for
 * them all and reads the rest while it runs. An answer waits at most for the rest of its turn's
 * requests; a lone request is answered a few microseconds later, in the same turn.
 */
export function endWithTurn(res: ServerResponse, body: Buffer | string | undefined): void {
  if (ending.length === 0) setImmediate(endAll);
  ending.push(res, body);
}

/** Responses and their bodies, in pairs: one array, no tuple allocated per answer. */
const ending: Array<ServerResponse | Buffer | string | undefined> = [];

/*
 * A process that ends in the middle of a turn (a function calling process.exit(), an uncaught
 * exception) never reaches the turn's setImmediate, and its queued answers would go with it although
 * their functions had returned. 'exit' listeners run synchronously on both ways out, and `res.end`
 * writes synchronously: it uncorks the socket and libuv tries the write at once, so what the kernel
 * takes (a whole answer, unless it is larger than the socket's free send buffer) is sent after the
 * process is gone. Not covered: an answer behind another on the same keep-alive connection (Node
 * holds it until the earlier one is finished, which needs a turn), and a SIGKILL.
 */
process.on('exit', endAll);

function endAll(): void {
  // Taken first: an end that answers synchronously into more work cannot grow this list under us.
  const batch = ending.splice(0);
  for (let i = 0; i < batch.length; i += 2) {
    const res = batch[i] as ServerResponse;
    try {
      res.end(batch[i + 1] as Buffer | string | undefined);
    } catch {
      // One response that cannot be ended must not leave the others unanswered; its connection goes.
      res.destroy();
    }
  }
}
