import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpHandler } from '@azure/functions';
import {
  BodyTooLargeError,
  ClientAbortedError,
  type LogLevel,
  levelEnabled,
  listen as listenOn,
  readBody,
} from '@dpskit/node-kit';
import { isoNow } from '../log/clock.js';
import type { LogFields } from '../log/fields.js';
import { fromFunctionsLevel, recordFromContextLog } from '../log/from-context.js';
import { forgetJsonTexts, noteJsonString, noteJsonTexts } from '../log/json-line.js';
import type { AllocatorLogRecord, AllocatorLogSink } from '../log/record.js';
import {
  type EffectiveHttpTrigger,
  effectiveTrigger,
  type HttpFunctionDefinition,
  httpTriggerOptions,
} from '../registration/http-function.js';
import { checkFunctionKey, maskCode, presentedKey } from './function-key.js';
import { LocalInvocationContext } from './invocation-objects.js';
import {
  plainResponseParts,
  toFunctionRequest,
  writeFunctionResponse,
  writeResponseParts,
  writeText,
} from './node-http.js';
import { FunctionRouter } from './router.js';

/** Well above DPS's 96 KB message limit, low enough that a bad client cannot exhaust memory. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * What bounds each connection to the host. Node's own defaults (headers 60 s, whole request 300 s,
 * checked every 30 s, no connection cap) let a client that trickles its request in hold a socket
 * for minutes and any number of them; `func start` runs on Kestrel, whose defaults are a 30 s
 * `RequestHeadersTimeout`, a 240 bytes/s minimum body rate after 5 s and a 130 s keep-alive. A
 * webhook request is one small POST (DPS's messages are at most 96 KB), so these are tighter.
 */
export interface HostLimits {
  /** Request line and headers must arrive within this of the request's first byte (Kestrel's 30 s); else 408, closed. */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this of its first byte; else 408, closed. */
  requestTimeoutMs: number;
  /** A kept-alive connection idle this long between requests is closed (Node's default, 5 s). */
  keepAliveTimeoutMs: number;
  /** Open connections per listening address; more are closed as they arrive, with one warning a second. */
  maxConnections: number;
}

export const DEFAULT_HOST_LIMITS: Readonly<HostLimits> = Object.freeze({
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 10_000,
});

/** The limits with the defaults filled in; throws a RangeError naming a setting that is not usable. */
export function hostLimits(given: Partial<HostLimits> = {}): HostLimits {
  const limits = { ...DEFAULT_HOST_LIMITS };
  for (const name of Object.keys(DEFAULT_HOST_LIMITS) as (keyof HostLimits)[]) {
    const value = given[name];
    if (value === undefined) continue;
    if (!(Number.isInteger(value) && value >= 1)) {
      throw new RangeError(`limits.${name} must be a whole number >= 1, not ${String(value)}.`);
    }
    limits[name] = value;
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(
      `limits.headersTimeoutMs (${limits.headersTimeoutMs}) must not be larger than limits.requestTimeoutMs (${limits.requestTimeoutMs}): the headers are part of the request.`,
    );
  }
  return limits;
}

export interface FunctionsHostOptions {
  definitions: readonly HttpFunctionDefinition[];
  routePrefix: string;
  functionKey: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Interface to listen on. By default both loopback addresses (127.0.0.1 and ::1, when the
   * machine has IPv6) so that `http://localhost:PORT` works whichever one a client resolves.
   */
  host?: string;
  log: AllocatorLogSink;
  /** The least severe lines built and given to `log` (default `info`). */
  logLevel?: LogLevel;
  /** Replacement handlers by function name (route, methods and auth level stay as registered). */
  handlers?: Readonly<Record<string, HttpHandler>>;
  /** Connection bounds; each one missing takes its `DEFAULT_HOST_LIMITS` value. */
  limits?: Partial<HostLimits>;
}

export interface RunningFunctionsHost {
  /** `http://localhost:PORT` (or the given host). */
  url: string;
  port: number;
  triggers: EffectiveHttpTrigger[];
  close(): Promise<void>;
}

interface Entry {
  definition: HttpFunctionDefinition;
  handler: HttpHandler;
  /** The function's name as JSON writes it inside a string (escaped, without the quotes). */
  nameJson: string;
}

/**
 * Serves registered HTTP functions over node:http the way the Functions host does: routing on
 * `{routePrefix}/{route}` with the registered methods, the function key checked for `function`
 * and `admin` auth levels, the handler called with an `HttpRequest` and an `InvocationContext` (the
 * host's own, instances of the library's classes to the function: invocation-objects.ts).
 * A bad request is answered and logged, never allowed to take the server down.
 */
export async function startFunctionsHost(options: FunctionsHostOptions): Promise<RunningFunctionsHost> {
  const { log } = options;
  const limits = hostLimits(options.limits);
  const entries = options.definitions.map((definition) => {
    const trigger = effectiveTrigger(definition);
    const entry: Entry = {
      definition,
      handler: options.handlers?.[definition.name] ?? definition.options.handler,
      nameJson: JSON.stringify(trigger.name).slice(1, -1),
    };
    return { trigger, entry };
  });
  const router = new FunctionRouter<Entry>(options.routePrefix, entries);

  const minLevel = options.logLevel ?? 'info';
  const enabled = (level: LogLevel): boolean => levelEnabled(level, minLevel);
  const infoEnabled = enabled('info');
  const hostLog = (level: LogLevel, msg: string, data?: Record<string, unknown>): void => {
    if (!enabled(level)) return;
    const record: AllocatorLogRecord = { time: isoNow(), level, source: 'host', msg };
    if (data) record.data = data;
    emit(log, record);
  };

  let baseUrl = '';
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const logExchange = (): void => {
      // null: the client went away before an answer was written. A successful exchange is a debug
      // line, as with `func start`: Core Tools shows the host's system logs (SystemTraceMiddleware's
      // "Executed HTTP request" lines among them) from Warning up by default (LoggingFilterHelper's
      // SystemLogDefaultLogLevel), while the function's Executing/Executed lines show at Information.
      const status = res.headersSent ? res.statusCode : null;
      const level: LogLevel = status === null ? 'warn' : status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
      if (!enabled(level)) return;
      hostLog(level, 'HTTP', {
        method: req.method,
        path: maskCode(req.url ?? ''),
        status,
        durationMs: Math.round(millisecondsSince(started) * 10) / 10,
      });
    };
    // One reaction rather than .catch().finally(): two promises and their microtasks fewer per request.
    handle(req, res).then(logExchange, (err: unknown) => {
      try {
        hostLog('error', 'Unhandled error while serving a request', { error: errorMessage(err) });
        if (!res.headersSent) writeText(res, 500, 'Internal server error.');
        else res.destroy();
      } finally {
        logExchange();
      }
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = requestUrl(req, baseUrl);
    const match = router.match(method, url.pathname);
    if (match.kind === 'not-found') {
      req.resume();
      writeText(res, 404, `No function is registered for ${url.pathname}.`);
      return;
    }
    if (match.kind === 'method-not-allowed') {
      req.resume();
      writeText(res, 405, `Method ${method} is not allowed here; use ${match.allow.join(', ')}.`, {
        allow: match.allow.join(', '),
      });
      return;
    }
    const { trigger, entry, params } = match;
    const keyCheck = checkFunctionKey(
      trigger.authLevel,
      presentedKey(header(req, 'x-functions-key'), url.searchParams),
      options.functionKey,
    );
    if (!keyCheck.ok) {
      req.resume();
      hostLog(
        'warn',
        `Unauthorized call to '${trigger.name}': ${keyCheck.reason === 'missing' ? 'no function key' : 'wrong function key'}`,
      );
      writeText(
        res,
        401,
        keyCheck.reason === 'missing'
          ? 'Unauthorized: this function needs its key in the "code" query parameter or the "x-functions-key" header.'
          : 'Unauthorized: the function key is not valid.',
      );
      return;
    }

    let body: Buffer;
    try {
      body = await readBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        writeText(res, 413, err.message, { connection: 'close' });
        req.resume();
        return;
      }
      if (err instanceof ClientAbortedError) {
        res.destroy();
        return;
      }
      throw err;
    }

    const request = toFunctionRequest(req, url, body, params);
    const invocationId = randomUUID();
    const functionName = trigger.name;
    const origin = { functionName, invocationId };
    const context = new LocalInvocationContext({
      invocationId,
      functionName,
      logHandler: (level, ...args) => {
        if (level === 'none' || !enabled(fromFunctionsLevel(level))) return;
        const record = recordFromContextLog(level, args, origin);
        // recordFromContextLog sets data exactly when the last argument is a LogFields: not checked again.
        const jsonTexts = record.data === undefined ? undefined : (args[args.length - 1] as LogFields).jsonTexts;
        if (jsonTexts === undefined) {
          emit(log, record);
          return;
        }
        // The texts hold for this record while the sink has it (a JSON line written at once).
        noteJsonTexts(record.data!, jsonTexts);
        try {
          emit(log, record);
        } finally {
          forgetJsonTexts();
        }
      },
      options: httpTriggerOptions(trigger),
    });

    if (infoEnabled) hostLog('info', executingMessage(functionName, entry.nameJson, invocationId));
    const started = process.hrtime.bigint();
    let result: Awaited<ReturnType<HttpHandler>>;
    try {
      result = await entry.handler(request, context);
    } catch (err) {
      // The Functions host answers 500 with no body when a function throws.
      hostLog(
        'error',
        `Executed 'Functions.${functionName}' (Failed, Id=${invocationId}, Duration=${elapsed(started)}ms)`,
        {
          error: errorMessage(err),
        },
      );
      writeText(res, 500, '');
      return;
    }
    // A plain answer (nearly always) is written at once, without awaiting the library's way.
    const parts = plainResponseParts(result);
    if (parts) writeResponseParts(res, parts, method);
    else await writeFunctionResponse(res, result, method);
    if (infoEnabled) hostLog('info', executedMessage(functionName, entry.nameJson, invocationId, elapsed(started)));
  };

  const servers = await listen(onRequest, options.port, options.host, limits, hostLog);
  const port = (servers[0]!.address() as AddressInfo).port;
  const displayHost =
    options.host === undefined || isLoopbackOrAny(options.host) ? 'localhost' : bracketIPv6(options.host);
  const url = `http://${displayHost}:${port}`;
  baseUrl = url;
  const triggers = entries.map((e) => e.trigger);
  hostLog('info', `Listening on ${url}`, {
    url,
    functions: triggers.map((t) => ({
      name: t.name,
      methods: t.methods,
      authLevel: t.authLevel,
      url: `${url}/${[options.routePrefix, t.route].filter((p) => p !== '').join('/')}`,
    })),
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    triggers,
    close() {
      closing ??= Promise.all(servers.map(closeServer)).then(() => hostLog('info', 'Stopped'));
      return closing;
    },
  };
}

/**
 * The host's line as an invocation starts (what `func start` writes), with its JSON text noted for
 * the JSON formatter, and the function name's and the invocation id's too, which the function's
 * lines carry (log/json-line.ts `noteJsonString`: the formatter then need not scan them).
 * `invocationId` must be a `randomUUID()`: hex digits and dashes, which JSON writes as they are.
 * The JSON is the message's own: its fixed parts are ASCII without anything JSON escapes, so the
 * name's escaped text (`nameJson`, JSON.stringify's without the quotes) is the same inside it (a
 * lone surrogate at either end of the name stays lone next to them). server.test.ts checks it
 * against JSON.stringify for awkward names.
 */
export function executingMessage(functionName: string, nameJson: string, invocationId: string): string {
  noteJsonString(functionName, `"${nameJson}"`);
  noteJsonString(invocationId, `"${invocationId}"`);
  const msg = `Executing 'Functions.${functionName}' (Reason='This function was programmatically called via the host APIs.', Id=${invocationId})`;
  noteJsonString(
    msg,
    `"Executing 'Functions.${nameJson}' (Reason='This function was programmatically called via the host APIs.', Id=${invocationId})"`,
  );
  return msg;
}

/** The host's line as an invocation ends well, its JSON text noted as `executingMessage`'s. */
export function executedMessage(
  functionName: string,
  nameJson: string,
  invocationId: string,
  durationMs: number,
): string {
  const msg = `Executed 'Functions.${functionName}' (Succeeded, Id=${invocationId}, Duration=${durationMs}ms)`;
  noteJsonString(msg, `"Executed 'Functions.${nameJson}' (Succeeded, Id=${invocationId}, Duration=${durationMs}ms)"`);
  return msg;
}

/** How long a client answered 400/408/431 has to close its side of the connection before it is destroyed. */
const CLOSE_GRACE_MS = 5_000;

function destroySocket(socket: { destroy(): unknown }): void {
  socket.destroy();
}

/** The answer to a request Node's parser gave up on, by its error code: what Kestrel answers too. */
const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

async function listen(
  onRequest: http.RequestListener,
  port: number,
  host: string | undefined,
  limits: HostLimits,
  hostLog: (level: LogLevel, msg: string, data?: Record<string, unknown>) => void,
): Promise<Server[]> {
  const create = (): Server => {
    const server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Node checks both timeouts this often (30 s by default, which would let a 30 s bound run
        // to 60): a walk over the requests still being received, nothing per request.
        connectionsCheckingInterval: Math.min(1_000, Math.ceil(limits.headersTimeoutMs / 2)),
      },
      onRequest,
    );
    server.maxConnections = limits.maxConnections;
    let lastDropWarning = 0;
    let droppedSinceWarning = 0;
    server.on('drop', () => {
      droppedSinceWarning += 1;
      const now = Date.now();
      if (now - lastDropWarning < 1_000) return;
      hostLog(
        'warn',
        `${limits.maxConnections} connections open, the limit (limits.maxConnections); closed ${droppedSinceWarning} new connection(s)`,
        { maxConnections: limits.maxConnections, dropped: droppedSinceWarning },
      );
      lastDropWarning = now;
      droppedSinceWarning = 0;
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Only a request that can still be answered is worth a line; a vanished client is not news.
      // (HPE_INVALID_EOF_STATE: the connection ended in the middle of a request.)
      if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request';
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        hostLog('warn', 'HTTP request not received in time', {
          headersTimeoutMs: limits.headersTimeoutMs,
          requestTimeoutMs: limits.requestTimeoutMs,
          status: 408,
        });
      } else {
        hostLog('warn', 'Malformed HTTP request', { error: err.message, code: err.code });
      }
      // A request whose answer has started (the host answered before its body was in, e.g. 404
      // while the body still arrives) cannot take a second one: Node's own handler checks the same.
      if ((socket as { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
        socket.destroy();
        return;
      }
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      // The listener keeps half-open connections (node:http's allowHalfOpen), and the parser has
      // let go of this one: a client that never closes its side must not keep the socket.
      setTimeout(destroySocket, CLOSE_GRACE_MS, socket).unref();
    });
    return server;
  };
  const first = create();
  await listenOn(first, { label: 'HTTP', host: host ?? '127.0.0.1', port, portSetting: '--port', exclusive: true });
  if (host !== undefined) return [first];
  const actualPort = (first.address() as AddressInfo).port;
  const second = create();
  try {
    await listenOn(second, { label: 'HTTP', host: '::1', port: actualPort, portSetting: '--port', exclusive: true });
    return [first, second];
  } catch {
    // No IPv6 loopback on this machine: 127.0.0.1 alone serves localhost.
    return [first];
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeIdleConnections();
    // Keep-alive clients in the middle of nothing must not hold the close open.
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  });
}

function requestUrl(req: IncomingMessage, baseUrl: string): URL {
  const target = req.url ?? '/';
  // Concatenated, not resolved: a target such as `//x/y` must stay a path, not become a host.
  const path = target.startsWith('/') ? target : `/${target}`;
  const hostHeader = header(req, 'host');
  if (hostHeader && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(hostHeader)) {
    try {
      return new URL(`http://${hostHeader}${path}`);
    } catch {
      // An unusable Host header falls back to the listening address.
    }
  }
  return new URL(`${baseUrl}${path}`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function isLoopbackOrAny(host: string): boolean {
  return ['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', ''].includes(host);
}

function bracketIPv6(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function elapsed(started: bigint): number {
  return Math.round(millisecondsSince(started));
}

/**
 * Milliseconds since `started` (a `process.hrtime.bigint()`), the monotonic clock `performance.now()`
 * reads too. Not `performance.now()` itself: its first use loads `perf_hooks` (seven of Node's
 * internal modules), 0.58 ms of main-thread CPU paid on a cold start's first request (issue #13).
 */
function millisecondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A throwing log sink must not break request handling. */
function emit(log: AllocatorLogSink, record: AllocatorLogRecord): void {
  try {
    log(record);
  } catch {
    // ignored on purpose
  }
}
