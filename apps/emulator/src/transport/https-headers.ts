import { randomUUID } from 'node:crypto';
import type { DeviceApiResponse } from '../core/device-api.js';

/**
 * The headers of every answer. DPS's REST spec lists `retry-after` (integer seconds) and `Location`
 * on 202 and `x-ms-error-code` on errors; `x-ms-request-id` is what Azure services send with every
 * response (for errors it is the body's `trackingId`).
 */
export function responseHeaders(
  response: DeviceApiResponse & { location?: string },
  contentLength: number,
  close = false,
): Record<string, string | number> {
  const body = response.body as { errorCode?: unknown; trackingId?: unknown };
  const isError = response.status >= 300 && typeof body.errorCode === 'number';
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': contentLength,
    'x-ms-request-id': isError && typeof body.trackingId === 'string' ? body.trackingId : randomUUID(),
  };
  if (isError) headers['x-ms-error-code'] = String(body.errorCode);
  if (response.retryAfterSeconds !== undefined) headers['retry-after'] = String(response.retryAfterSeconds);
  if (response.location !== undefined) headers.Location = response.location;
  if (close) headers.Connection = 'close';
  return headers;
}
