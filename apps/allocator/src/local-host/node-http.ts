import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cookie, HttpResponseInit } from '@azure/functions';
import { functionsLibrary as functions } from '../functions-library.js';
import { BufferedRequest } from './buffered-request.js';
import { LocalHttpRequest } from './invocation-objects.js';
import { endWithTurn } from './turn-end.js';

const { HttpResponse } = functions;
type HttpResponse = InstanceType<typeof HttpResponse>;

// Hop-by-hop headers describe the connection to this server, not the request the function gets.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te']);

/** The headers a function sees: Node's, less the hop-by-hop ones, repeated ones joined with `, `. */
export function functionRequestHeaders(req: Pick<IncomingMessage, 'headers'>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/**
 * The `HttpRequest` the function receives: the host's `LocalHttpRequest` (an `HttpRequest` to the
 * function, see invocation-objects.ts) over the body already read (see buffered-request.ts), its
 * `query` the searchParams of `url`, which the caller must not use afterwards. GET and HEAD carry
 * no body, as the library's constructor drops it. The function's headers are copied from `req` when
 * it first reads them (`req.headers` must not change before: the host's never do).
 */
export function toFunctionRequest(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  params: Record<string, string>,
): LocalHttpRequest {
  const method = req.method ?? 'GET';
  // The headers object only, not the request (and its socket), is held until then.
  const { headers } = req;
  const native = new BufferedRequest(
    url.href,
    method,
    () => functionRequestHeaders({ headers }),
    method === 'GET' || method === 'HEAD' ? null : body,
  );
  return new LocalHttpRequest(native, url.searchParams, params);
}

export interface ResponseParts {
  status: number;
  /** Name and value pairs as a fetch `Headers` iterates them: lower-case names, sorted. */
  headers: ReadonlyArray<readonly [string, string]>;
  cookies: readonly Cookie[];
  /** Text is kept as text: Node then sends the head and a text body in one write. */
  body: Buffer | string;
}

const EMPTY = Buffer.alloc(0);
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * What `new HttpResponse(init)` would answer (status, headers, body), without building the undici
 * `Response` and reading its stream back, for the inits handlers return nearly always: no status or
 * 200-599, a string, bytes, `jsonBody` or no body, any headers. Undefined for anything else (an
 * `HttpResponse`, streams, blobs, form data, odd statuses), which takes the library's way. Headers go
 * as `Response` holds them (see headerList), so names, values and errors are undici's; the
 * default content types are `Response`'s (`text/plain;charset=UTF-8`) and `HttpResponse`'s
 * (`application/json`). node-http.test.ts compares both ways init by init.
 */
export function plainResponseParts(result: HttpResponseInit | HttpResponse | undefined): ResponseParts | undefined {
  if (result instanceof HttpResponse) return undefined;
  const init: HttpResponseInit = result ?? {};
  const status = init.status ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 599 || NULL_BODY_STATUSES.has(status)) return undefined;
  let body: Buffer | string;
  let type: string | undefined;
  if (init.jsonBody !== undefined && init.jsonBody !== null) {
    const text: unknown = JSON.stringify(init.jsonBody);
    if (typeof text !== 'string') return undefined;
    body = text;
    type = 'application/json';
  } else if (init.body === undefined || init.body === null) {
    body = EMPTY;
  } else if (typeof init.body === 'string') {
    body = init.body;
    type = 'text/plain;charset=UTF-8';
  } else if (init.body instanceof Uint8Array) {
    body = Buffer.from(init.body);
  } else {
    return undefined;
  }
  return { status, headers: headerList(init.headers, type), cookies: init.cookies ?? [], body };
}

/**
 * The headers as `Response` would hold them, with `defaultType` as content-type when none is given.
 * A plain object of lower-case token names and printable ASCII values that need no trimming (what
 * handlers return) is taken as is and sorted; anything else goes through the fetch `Headers` class
 * for undici's normalisation and errors. The first use of `Headers` loads undici, a noticeable part
 * of the first answer after a cold start.
 */
function headerList(init: HttpResponseInit['headers'], defaultType: string | undefined): Array<[string, string]> {
  if (init === undefined || isPlainHeaderRecord(init)) {
    const list: Array<[string, string]> = init === undefined ? [] : Object.entries(init);
    if (defaultType !== undefined && !(init !== undefined && Object.hasOwn(init, 'content-type'))) {
      list.push(['content-type', defaultType]);
    }
    return list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  const headers = new Headers(init);
  if (defaultType !== undefined && !headers.has('content-type')) headers.set('content-type', defaultType);
  return [...headers];
}

const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
// Printable ASCII and tabs inside, no space or tab at either end: what Headers keeps unchanged.
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

function isPlainHeaderRecord(init: NonNullable<HttpResponseInit['headers']>): init is Record<string, string> {
  if (Object.getPrototypeOf(init) !== Object.prototype) return false;
  for (const [name, value] of Object.entries(init)) {
    if (typeof value !== 'string' || name === 'set-cookie' || !TOKEN.test(name) || !PLAIN_VALUE.test(value)) {
      return false;
    }
  }
  return true;
}

/** The same through the library: an `HttpResponse` (built from the init when needed), its body read. */
export async function libraryResponseParts(
  result: HttpResponseInit | HttpResponse | undefined,
): Promise<ResponseParts> {
  const response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: [...response.headers], cookies: response.cookies, body };
}

/** Writes what the handler returned: an `HttpResponse`, an `HttpResponseInit`, or nothing (200, empty). */
export async function writeFunctionResponse(
  res: ServerResponse,
  result: HttpResponseInit | HttpResponse | undefined,
  method: string,
): Promise<number> {
  const response = plainResponseParts(result) ?? (await libraryResponseParts(result));
  writeResponseParts(res, response, method);
  return response.status;
}

/**
 * Writes an answer's parts: its headers with the body's content-length at once, then the body (none
 * for HEAD) with the turn's other answers (turn-end.ts).
 */
export function writeResponseParts(res: ServerResponse, response: ResponseParts, method: string): void {
  const { body } = response;
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) headers[name] = value;
  const cookies = response.cookies.map(serializeCookie);
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length);
  res.writeHead(response.status, headers);
  endWithTurn(res, method === 'HEAD' ? undefined : body);
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
