import type { IncomingMessage } from 'node:http';

/** The body is larger than the reader's limit; the rest of it is drained, not kept. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(`Request body exceeds ${limit} bytes.`);
  }
}

/** The connection failed or closed before the body was complete. */
export class ClientAbortedError extends Error {
  override readonly name = 'ClientAbortedError';
  constructor() {
    super('The client closed the connection before the body was complete.');
  }
}

/**
 * Reads a request's whole body, keeping at most `limit` bytes: a larger body rejects with
 * `BodyTooLargeError` as soon as it passes the limit (the rest is read and dropped, so that an
 * answer can still be written), a client that goes away mid-body with `ClientAbortedError`.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        fail(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    // A client that disconnects mid-body: settle instead of leaving the request pending forever.
    // 'close' also follows every complete body: no error is built then (a stack trace per request).
    const aborted = () => {
      if (!settled) fail(new ClientAbortedError());
    };
    req.on('close', aborted);
    // Errors of the request stream are the connection failing under it (Node reports a client that
    // disconnects mid-body as "aborted"), so they all mean the same thing here.
    req.on('error', aborted);
  });
}
