import { createRequire } from 'node:module';
import { TOASTER_REQUEST_2021_10_01 as TOASTER_BODY } from '@dpskit/contracts/fixtures';

// The load both allocator benches (allocate.ts, host-ladder.ts) put on a server: autocannon with
// the tutorial's toaster request.

/** What the benches read of autocannon's result (the package ships no types). */
export interface ToasterLoadResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
  requests: { total: number };
}
interface AutocannonInstance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (
  options: Record<string, unknown>,
  done: (err: Error | null, result: ToasterLoadResult) => void,
) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export const TOASTER_LOAD_CONNECTIONS = 50;

/** The error of a round that was not answered cleanly. */
export function loadError(url: string, result: ToasterLoadResult): Error {
  return new Error(`${url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
}

/**
 * `TOASTER_LOAD_CONNECTIONS` connections POSTing the toaster request to `url` for `duration`
 * seconds; `onResponse` sees each answer's status and latency (ms). Rejects if any request failed,
 * timed out or was answered with a non-2xx status.
 */
export function toasterLoad(
  url: string,
  duration: number,
  onResponse?: (status: number, ms: number) => void,
): Promise<ToasterLoadResult> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: TOASTER_LOAD_CONNECTIONS,
        duration,
        method: 'POST',
        body: TOASTER_BODY,
        headers: { 'content-type': 'application/json' },
      },
      (err, result) => {
        if (err) return reject(err);
        if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) return reject(loadError(url, result));
        resolve(result);
      },
    );
    if (onResponse) instance.on('response', (_client, status, _bytes, ms) => onResponse(status, ms));
  });
}
