import { STATUS_CODES } from 'node:http';
import { DpsErrorCode } from '@dpskit/contracts';
import { type DeviceApiResponse, errorResponse } from '../core/device-api.js';
import { responseHeaders } from './https-headers.js';

export interface HttpServerLimits {
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * The answer to a request Node's HTTP parser refused (its `clientError` event), with the status
 * Node itself would send — 431, 408 or 400 — but a DPS error body like every other answer.
 * `undefined` when the peer is gone and nothing can be answered.
 */
export function clientErrorResponse(
  error: { code?: string; message: string },
  limits: HttpServerLimits,
): DeviceApiResponse | undefined {
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return errorResponse(
        DpsErrorCode.RequestHeaderFieldsTooLarge,
        `The request line and headers are larger than ${limits.maxHeaderSize} bytes.`,
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return errorResponse(
        DpsErrorCode.RequestTimeout,
        `The request did not arrive in time (headers within ${limits.headersTimeoutMs / 1000} s, the whole request within ${limits.requestTimeoutMs / 1000} s).`,
      );
    default:
      return errorResponse(
        DpsErrorCode.InvalidRequestBody,
        `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'}: ${error.message}).`,
      );
  }
}

/** A whole HTTP/1.1 response, written straight to a socket that has no ServerResponse; it closes the connection. */
export function rawHttpResponse(response: DeviceApiResponse): string {
  const text = JSON.stringify(response.body);
  const headers = responseHeaders(response, Buffer.byteLength(text), true);
  return [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    text,
  ].join('\r\n');
}
