import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cookie, HttpResponseInit } from '@azure/functions';
import functions from '@azure/functions';

const { HttpRequest, HttpResponse } = functions;
type HttpRequest = InstanceType<typeof HttpRequest>;
type HttpResponse = InstanceType<typeof HttpResponse>;

// Hop-by-hop headers describe the connection to this server, not the request the function gets.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te']);

/** The `HttpRequest` the function receives, built with the `@azure/functions` constructor as the worker does. */
export function toFunctionRequest(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  params: Record<string, string>,
): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return new HttpRequest({
    method: req.method ?? 'GET',
    url: url.toString(),
    headers,
    params,
    body: { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) },
  });
}

/** Writes what the handler returned: an `HttpResponse`, an `HttpResponseInit`, or nothing (200, empty). */
export async function writeFunctionResponse(
  res: ServerResponse,
  result: HttpResponseInit | HttpResponse | undefined,
  method: string,
): Promise<number> {
  const response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = response.cookies.map(serializeCookie);
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  headers['content-length'] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(method === 'HEAD' ? undefined : body);
  return response.status;
}

function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.domain) parts.push(`Domain=${cookie.domain}`);
  if (cookie.path) parts.push(`Path=${cookie.path}`);
  if (cookie.expires !== undefined) parts.push(`Expires=${new Date(cookie.expires).toUTCString()}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.secure) parts.push('Secure');
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.sameSite) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}

/** A short plain-text answer from the host itself (404, 401, ...). */
export function writeText(
  res: ServerResponse,
  status: number,
  message: string,
  extra: Record<string, string> = {},
): void {
  const body = Buffer.from(message, 'utf8');
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(body.length),
    ...extra,
  });
  res.end(body);
}
