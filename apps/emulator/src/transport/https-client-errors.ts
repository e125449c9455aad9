import { STATUS_CODES } from 'node:http';
import { DpsErrorCode } from '@dpskit/contracts';
import { type DeviceApiResponse, errorResponse } from '../core/device-api.js';
import { hubError, hubRequestTimeout } from '../hub/https-api.js';
import { responseHeaders } from './https-headers.js';
import type { HttpAnswer } from './service-api.js';

export interface HttpServerLimits {
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * The answer to a request Node's HTTP parser refused (its `clientError` event), with the status
 * Node itself would send — 431, 408 or 400 — but an error body like every other answer: DPS's, or
 * with `shape` `hub` (a request whose path is a hub's) IoT Hub's, as every other answer on a hub
 * path. IoT Hub's codes: 400 `GenericBadRequest` (400000, its REST "bad request" code); 408
 * `RequestTimeout` and 431 `RequestHeaderFieldsTooLarge` are the emulator's (IoT Hub documents
 * none). `undefined` when the peer is gone and nothing can be answered.
 */
export function clientErrorResponse(
  error: { code?: string; message: string },
  limits: HttpServerLimits,
  shape?: 'dps',
): DeviceApiResponse | undefined;
export function clientErrorResponse(
  error: { code?: string; message: string },
  limits: HttpServerLimits,
  shape: 'dps' | 'hub',
): DeviceApiResponse | HttpAnswer | undefined;
export function clientErrorResponse(
  error: { code?: string; message: string },
  limits: HttpServerLimits,
  shape: 'dps' | 'hub' = 'dps',
): DeviceApiResponse | HttpAnswer | undefined {
  const hub = shape === 'hub';
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW': {
      const message = `The request line and headers are larger than ${limits.maxHeaderSize} bytes.`;
      return hub
        ? hubError(431, 'RequestHeaderFieldsTooLarge', message)
        : errorResponse(DpsErrorCode.RequestHeaderFieldsTooLarge, message);
    }
    case 'ERR_HTTP_REQUEST_TIMEOUT': {
      const message = `The request did not arrive in time (headers within ${limits.headersTimeoutMs / 1000} s, the whole request within ${limits.requestTimeoutMs / 1000} s).`;
      return hub ? hubRequestTimeout(message) : errorResponse(DpsErrorCode.RequestTimeout, message);
    }
    default: {
      const message = `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'}: ${error.message}).`;
      return hub
        ? hubError(400, 'GenericBadRequest', message)
        : errorResponse(DpsErrorCode.InvalidRequestBody, message);
    }
  }
}

/** A whole HTTP/1.1 response, written straight to a socket that has no ServerResponse; it closes the connection. */
export function rawHttpResponse(response: DeviceApiResponse | HttpAnswer): string {
  const text = JSON.stringify(response.body);
  // As `send` in https.ts: an answer's own headers (IoT Hub's error code, its request id) last.
  const headers = {
    ...responseHeaders(response as DeviceApiResponse, Buffer.byteLength(text), true),
    ...('headers' in response ? response.headers : undefined),
  };
  return [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    text,
  ].join('\r\n');
}
