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
import { fromFunctionsLevel, recordFromContextLog } from '../log/from-context.js';
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
  const entries = options.definitions.map((definition) => ({
    trigger: effectiveTrigger(definition),
    entry: {
      definition,
      handler: options.handlers?.[definition.name] ?? definition.options.handler,
    } satisfies Entry,
  }));
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
    const context = new LocalInvocationContext({
      invocationId,
      functionName,
      logHandler: (level, ...args) => {
        if (level === 'none' || !enabled(fromFunctionsLevel(level))) return;
        emit(log, recordFromContextLog(level, args, { functionName, invocationId }));
      },
      options: httpTriggerOptions(trigger),
    });

    if (infoEnabled) {
      hostLog(
        'info',
        `Executing 'Functions.${functionName}' (Reason='This function was programmatically called via the host APIs.', Id=${invocationId})`,
      );
    }
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
    if (infoEnabled) {
      hostLog(
        'info',
        `Executed 'Functions.${functionName}' (Succeeded, Id=${invocationId}, Duration=${elapsed(started)}ms)`,
      );
    }
  };

  const servers = await listen(onRequest, options.port, options.host, (err) =>
    hostLog('warn', 'Malformed HTTP request', { error: err.message, code: (err as NodeJS.ErrnoException).code }),
  );
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

async function listen(
  onRequest: http.RequestListener,
  port: number,
  host: string | undefined,
  onClientError: (err: Error) => void,
): Promise<Server[]> {
  const create = (): Server => {
    const server = http.createServer(onRequest);
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Only a request that can still be answered is worth a line; a vanished client is not news.
      // (HPE_INVALID_EOF_STATE: the connection ended in the middle of a request.)
      if (err.code !== 'ECONNRESET' && err.code !== 'HPE_INVALID_EOF_STATE' && socket.writable) {
        onClientError(err);
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else {
        socket.destroy();
      }
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
