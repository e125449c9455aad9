import https from 'node:https';
import type { Emulator } from '../emulator.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/**
 * A plain node:https request to the emulator's HTTPS listener (for what the SDK never sends). With
 * `withholdBody` only the headers are sent (a `Content-Length` in `headers` announcing a body that
 * never comes): only an answer given before the body is read arrives before the idle timeout.
 */
export function rawRequest(
  emulator: Emulator,
  options: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    withholdBody?: boolean;
  },
): Promise<RawResponse> {
  const endpoint = emulator.endpoints.https;
  if (!endpoint) throw new Error('the emulator runs without HTTPS');
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: 'localhost',
        port: endpoint.port,
        method: options.method,
        path: options.path,
        ca: emulator.caCertPem,
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          // As the SDK does (it even sends `{}` with GET): a length, not a chunked body.
          'Content-Length': Buffer.byteLength(options.body ?? ''),
          ...options.headers,
        },
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
      },
    );
    request.on('error', reject);
    if (options.withholdBody) request.flushHeaders();
    else request.end(options.body);
  });
}
