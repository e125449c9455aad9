import { randomUUID } from 'node:crypto';
import { type IncomingMessage, METHODS, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { DpsErrorCode } from '@dpskit/contracts';
import { BodyTooLargeError, type Logger, listen, readBody } from '@dpskit/node-kit';
import type { AttestationResult } from '../core/attestation.js';
import { clip, clipUrl, maskUrlQuery } from '../core/client-text.js';
import { type DeviceApi, type DeviceApiResponse, errorResponse, MAX_DEVICE_MESSAGE_BYTES } from '../core/device-api.js';
import { type LimitedKind, limitWarnings } from '../core/limited-warnings.js';
import type { HubService } from '../hub/core/hub-service.js';
import {
  authorizeHubRequest,
  type HubGate,
  handleHubRequest,
  hubBodyTooLarge,
  hubRequestTimeout,
  hubServerError,
  isHubPath,
  MAX_HUB_BODY_BYTES,
} from '../hub/https-api.js';
import {
  boundConnections,
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  destroyAfterGrace,
} from './connection-limits.js';
import { clientErrorResponse, rawHttpResponse } from './https-client-errors.js';
import { responseHeaders } from './https-headers.js';
import { type DeviceRoute, isDatedApiVersion, matchRoute } from './https-routes.js';
import { AZURE_IDLE_TIMEOUT_MS, trackIdleConnections } from './idle-connections.js';
import type { RunningTransport } from './mqtt.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerCertificateChain } from './peer-certificates.js';
import {
  decideBeforeBody,
  type HttpAnswer,
  handleServiceRequest,
  MAX_SERVICE_BODY_BYTES,
  type ServiceApiOptions,
  type ServiceAuthorization,
  serviceError,
} from './service-api.js';
import { isServicePath } from './service-routes.js';
import { logTlsClientError } from './tls-client-errors.js';
import type { UpgradeHandler } from './websocket.js';
import { IOTHUB_WEBSOCKET_PATH } from './websocket-upgrade.js';

export interface HttpsTransportOptions {
  api: DeviceApi;
  /** The DPS service (enrollment) API, served beside the device API on the same listener. */
  service?: Omit<ServiceApiOptions, 'log'>;
  /** The emulated IoT hubs' registry and device REST routes (`/devices/…`, `/twins/…`), on the same listener. */
  hub?: HubService;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  log: Logger;
  limits?: ConnectionLimits;
  /**
   * Handlers of HTTP upgrades (WebSocket transports), asked in order; an upgrade none takes is
   * refused with a 400 that says what the listener serves.
   */
  upgradeHandlers?: readonly UpgradeHandler[];
  /** The clock the listener's warning limit is measured on (default: the service API's, then the wall clock). */
  now?: () => Date;
}

/**
 * The listener's warnings any client can cause once per request or connection, without a
 * credential: logged at most once in full a second per kind, the rest counted (limitWarnings).
 */
export const HTTPS_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  'service.auth': { summary: 'service API request(s) refused with 401', countBy: 'reason', fields: { status: 401 } },
  'hub.auth': { summary: 'hub registry request(s) refused with 401', countBy: 'reason', fields: { status: 401 } },
  'https.unrouted': { summary: 'request(s) to no resource of the listener (404/405)', countBy: 'status' },
  'hub.api-version': {
    summary: 'hub request(s) refused for their api-version (400 InvalidProtocolVersion)',
    countBy: 'status',
    fields: { status: 400 },
  },
  'https.websocket': { summary: 'WebSocket upgrade(s) refused (400)', countBy: 'status', fields: { status: 400 } },
  'https.protocol': { summary: 'client(s) on the HTTPS port not speaking TLS or HTTP', countBy: 'code' },
};

/** The body handed to a request refused before its body was read. */
const EMPTY_BODY = Buffer.alloc(0);

/**
 * How much of a refused request's chunk is read for its request line: the method and as much of
 * the path as tells which API it is for.
 */
const MAX_READ_REQUEST_LINE = 1024;

/** Read a little more than DPS's 96 KB limit so that DeviceApi can say how large the body was. */
const MAX_BODY_BYTES = MAX_DEVICE_MESSAGE_BYTES + 1024;

const DEVICE_API_SHAPE =
  'the device API serves PUT /{idScope}/registrations/{registrationId}/register, GET /{idScope}/registrations/{registrationId}/operations/{operationId} and POST /{idScope}/registrations/{registrationId}';
const SERVICE_API_SHAPE = 'the service API serves /enrollmentGroups/{id}, /enrollments/{id} and /registrations/{id}';

/** Which API a request is for: the hubs' routes, the DPS service API, or the DPS device API. */
type Surface = 'hub' | 'service' | 'dps';

/**
 * A request's URL parsed once, and the API its path belongs to: the one that routes it (`decide`),
 * sets its body limit and shapes the answers given outside the routes (413, 408, 500). A URL that
 * does not parse (e.g. `//[`) belongs to the DPS device API, which answers it 404.
 */
interface Target {
  url: URL | undefined;
  surface: Surface;
}

/**
 * A request as its URL and headers decide it (`decide` in startHttpsTransport), before its body is
 * read. `hub` and `device` carry the checked credentials, refused or not.
 */
type Decision =
  | { kind: 'invalid-url' }
  | { kind: 'hub'; hub: HubService; url: URL; gate: HubGate }
  | {
      kind: 'service';
      service: ServiceApiOptions;
      url: URL;
      /** The answer its headers decide (404/405, 401, api-version 400, 415), or undefined. */
      refusal?: HttpAnswer;
      /** Whether `refusal` is the 401 of headers without a valid SAS token for the route. */
      forCredentials?: boolean;
      /** What its SAS token was granted (when not refused). */
      authorized?: ServiceAuthorization;
    }
  | { kind: 'unrouted'; url: URL; route: Extract<DeviceRoute, { kind: 'not-found' | 'method-not-allowed' }> }
  | { kind: 'answer'; answer: DeviceApiResponse }
  | {
      kind: 'device';
      url: URL;
      route: Extract<DeviceRoute, { kind: 'register' | 'operation-status' | 'status-lookup' }>;
      apiVersion: string;
      attestation: AttestationResult;
    };

/**
 * Whether a request is refused for its credentials alone, from its headers: answered before its
 * body is read. The service API, the hub's registry and device routes and every DPS device route
 * decide from the headers (SAS token, or the TLS client certificate; the emulator attests no TPM, whose first
 * register carries its endorsement key in the body), so none of them reads the body of a refusal.
 */
function refusedForCredentials(decision: Decision): boolean {
  if (decision.kind === 'service') return decision.forCredentials === true;
  if (decision.kind === 'hub') return !decision.gate.ok && decision.gate.refused;
  return decision.kind === 'device' && !decision.attestation.ok;
}

/**
 * Whether a request's answer is decided by its request line and headers alone: refused for its
 * credentials, or for its path (404), method (405), api-version (400) or, on the service API, the
 * Content-Type of the body it announces (415). Answered without reading the body; only a request
 * its headers accept has its body read.
 */
function answeredFromHeaders(decision: Decision): boolean {
  switch (decision.kind) {
    case 'invalid-url':
    case 'unrouted':
    case 'answer':
      return true;
    case 'hub':
      return !decision.gate.ok;
    case 'service':
      return decision.refusal !== undefined;
    case 'device':
      return !decision.attestation.ok;
  }
}

/**
 * DPS's device REST API on node:https. Every answer is JSON with
 * `Content-Type: application/json; charset=utf-8` (the SDK parses nothing else), a `retry-after`
 * header (seconds) while `assigning`, and a DPS error body for every status ≥ 300. A bad request
 * never ends the server.
 */
export async function startHttpsTransport(options: HttpsTransportOptions): Promise<RunningTransport> {
  const { api } = options;
  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  // One for the listener's life: the warnings any client can cause per request are limited across
  // requests (HTTPS_LIMITED_WARNINGS), the counts flushed at close.
  const warnings = limitWarnings(options.log, HTTPS_LIMITED_WARNINGS, { now: options.now ?? options.service?.now });
  const { log } = warnings;
  const service: ServiceApiOptions | undefined = options.service && { ...options.service, log };

  const unrouted = (req: IncomingMessage, path: string, status: number, message: string): DeviceApiResponse => {
    const shown = clip(path);
    log.warn('https.unrouted', `${clip(req.method ?? '')} ${shown} → ${status}: ${message}`, {
      method: req.method,
      path: shown,
      status,
    });
    return errorResponse(status === 405 ? DpsErrorCode.MethodNotAllowed : DpsErrorCode.NotFound, message);
  };

  /** `rawUrl`: the request target as sent (`req.url`, or the request line of one Node refused). */
  const target = (rawUrl: string | undefined): Target => {
    let url: URL;
    try {
      // The parsed path, not the raw one: dot segments resolved (`/x/../twins/d` is `/twins/d`).
      url = new URL(rawUrl ?? '/', 'https://dps.invalid');
    } catch {
      // e.g. `//[`: parsed as an authority that is no valid host.
      return { url: undefined, surface: 'dps' };
    }
    const surface =
      options.hub && isHubPath(url.pathname) ? 'hub' : service && isServicePath(url.pathname) ? 'service' : 'dps';
    return { url, surface };
  };

  /**
   * What a request's URL and headers decide, before its body is read: which API, its route, and its
   * credentials (a failed check is in the decision; `answeredFromHeaders` says which are answered
   * without the body). `handle` goes on from it once the body is read, so the credentials are
   * checked once. Throws what the store throws (an enrollment or device lookup): the request is
   * then decided again once its body is read, as before.
   */
  const decide = (req: IncomingMessage, { url, surface }: Target): Decision => {
    const method = req.method ?? 'GET';
    if (!url) return { kind: 'invalid-url' };
    if (options.hub && surface === 'hub') {
      const gate = authorizeHubRequest(
        options.hub,
        { method, url, headers: req.headers, clientCertificates: peerCertificateChain(req.socket) },
        log,
      );
      return { kind: 'hub', hub: options.hub, url, gate };
    }
    if (service && surface === 'service') {
      const checked = decideBeforeBody(service, { method, url, headers: req.headers });
      return checked.ok
        ? { kind: 'service', service, url, authorized: checked.authorization }
        : { kind: 'service', service, url, refusal: checked.answer, forCredentials: checked.credentials };
    }
    const route = matchRoute(method, url.pathname);
    if (route.kind === 'not-found' || route.kind === 'method-not-allowed') return { kind: 'unrouted', url, route };
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) {
      return {
        kind: 'answer',
        answer: errorResponse(
          DpsErrorCode.InvalidRequestBody,
          'The api-version query parameter is required (for example api-version=2021-10-01).',
        ),
      };
    }
    if (!isDatedApiVersion(apiVersion)) {
      return {
        kind: 'answer',
        answer: errorResponse(DpsErrorCode.ArgumentInvalid, `Unsupported API version ${clip(apiVersion)}.`),
      };
    }
    const attestation = api.service.attest({
      requestedIdScope: route.idScope,
      registrationId: route.registrationId,
      token: req.headers.authorization,
      clientCertificates: peerCertificateChain(req.socket),
    });
    if (!attestation.ok) {
      log.debug('https.auth', `${attestation.registrationId}: ${attestation.reason} (${attestation.detail})`, {
        registrationId: attestation.registrationId,
        reason: attestation.reason,
      });
    }
    return { kind: 'device', url, route, apiVersion, attestation };
  };

  const handle = (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    decision: Decision,
  ): HttpAnswer | DeviceApiResponse | Promise<DeviceApiResponse | HttpAnswer> => {
    switch (decision.kind) {
      case 'invalid-url':
        return unrouted(
          req,
          maskUrlQuery(String(req.url)),
          404,
          `Neither DPS API has a resource at ${clipUrl(req.url ?? '')}: ${DEVICE_API_SHAPE}; ${SERVICE_API_SHAPE}.`,
        );
      case 'hub': {
        // The client certificates were read for the gate (decide): the gate is all that needs them.
        const gone = new AbortController();
        const answer = handleHubRequest(
          decision.hub,
          { method: req.method ?? 'GET', url: decision.url, headers: req.headers, body, signal: gone.signal },
          log,
          decision.gate,
        );
        if (answer instanceof Promise) {
          // The caller gone before its answer (its connection closed): a held direct method call
          // is let go, rather than keeping its place in the device's 50 and its timer until its
          // timeouts run out.
          if (res.destroyed) gone.abort();
          else res.once('close', () => res.writableFinished || gone.abort());
        }
        // A direct method call is answered when the device answers, up to its own timeouts (at most
        // 300 + 300 s): the connection's idle timeout (limits.idleTimeoutMs, which Node re-arms per
        // request) would cut it first. The request is all in; Node sets the keep-alive timeout
        // once the answer is written, and the idle timeout again at the next request.
        if (answer instanceof Promise) req.socket.setTimeout(0);
        return answer;
      }
      case 'service':
        if (decision.refusal) return decision.refusal;
        return handleServiceRequest(decision.service, {
          method: req.method ?? 'GET',
          url: decision.url,
          headers: req.headers,
          body,
          ...(decision.authorized ? { authorized: decision.authorized } : {}),
        });
      case 'unrouted':
        return decision.route.kind === 'not-found'
          ? unrouted(
              req,
              decision.url.pathname,
              404,
              `Neither DPS API has a resource at ${clip(decision.url.pathname)}: ${DEVICE_API_SHAPE}; ${SERVICE_API_SHAPE}.`,
            )
          : unrouted(
              req,
              decision.url.pathname,
              405,
              `The DPS device API expects ${decision.route.allowed} for ${clip(decision.url.pathname)}, not ${clip(req.method ?? '')}.`,
            );
      case 'answer':
        return decision.answer;
      case 'device':
        break;
    }
    const { url, route, attestation } = decision;
    if (route.kind === 'register') {
      const response = api.registerSoon(attestation, body, 'https', decision.apiVersion);
      return response instanceof Promise
        ? response.then((saved) => withLocation(saved, req, route, url))
        : withLocation(response, req, route, url);
    }
    if (route.kind === 'operation-status') {
      return api
        .operationStatus(attestation, route.operationId, 'https')
        .then((response) => withLocation(response, req, route, url));
    }
    return api.statusLookup(attestation);
  };

  const send = (res: ServerResponse, response: DeviceApiResponse | HttpAnswer, close = false) => {
    if (res.headersSent || res.destroyed) return; // the device left while a poll was held
    if (response.body === undefined) {
      // 204 (service API deletes): no body, no content headers.
      res.writeHead(response.status, { 'x-ms-request-id': randomUUID(), ...(close ? { Connection: 'close' } : {}) });
      res.end();
      return;
    }
    if (Buffer.isBuffer(response.body)) {
      // Bytes as they are (a hub's cloud-to-device message), with the answer's own headers.
      res.writeHead(response.status, {
        'Content-Length': response.body.length,
        'x-ms-request-id': randomUUID(),
        ...('headers' in response ? response.headers : undefined),
        ...(close ? { Connection: 'close' } : {}),
      });
      res.end(response.body);
      return;
    }
    // A poll's answer as the store keeps it (DeviceApiResponse.bodyJson), else serialized here.
    const text =
      'bodyJson' in response && response.bodyJson !== undefined ? response.bodyJson : JSON.stringify(response.body);
    const extra = 'headers' in response ? response.headers : undefined;
    res.writeHead(response.status, {
      ...responseHeaders(response as DeviceApiResponse, Buffer.byteLength(text), close),
      ...extra,
    });
    res.end(text);
  };

  /**
   * `send` that cannot throw out of an event handler or a promise's callback (where a throw would
   * end the process): a failure to write the answer is logged and the connection destroyed. Nothing
   * known makes `send` throw (every status and header it writes is the emulator's own, validated
   * input echoed only after its schema check, bodies plain JSON); this keeps it so.
   */
  const trySend = (
    req: IncomingMessage,
    res: ServerResponse,
    response: DeviceApiResponse | HttpAnswer,
    close = false,
  ): void => {
    try {
      send(res, response, close);
    } catch (err) {
      log.error(
        'https.request',
        `${clip(req.method ?? '')} ${clipUrl(req.url ?? '')}: the answer could not be written: ${(err as Error).message}`,
        { stack: (err as Error).stack },
      );
      res.destroy();
    }
  };

  /**
   * Handles a request (its body read, or empty for a refusal decided from its headers) and answers
   * it; a failure is a 500 in the error shape of the API whose path it is (a hub path's: IoT Hub's).
   * `close`: answer with `Connection: close`; `'unless-complete'`: only if the request's body is
   * not all in when the answer is written (an answer given without reading the body: see below).
   */
  const respond = (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    decision: Decision | undefined,
    to: Target,
    close: boolean | 'unless-complete' = false,
  ): void => {
    Promise.resolve()
      .then(() => handle(req, res, body, decision ?? decide(req, to)))
      .catch((err: Error) => {
        log.error('https.request', `${clip(req.method ?? '')} ${clipUrl(req.url ?? '')}: ${err.message}`, {
          stack: err.stack,
        });
        return to.surface === 'hub'
          ? hubServerError()
          : errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
      })
      .then((response) => {
        if (close !== 'unless-complete') return trySend(req, res, response, close);
        // After the chunk being parsed: the body that came with the headers is then all in (Node
        // parses it after the request handler's promise jobs have run, before the next turn).
        setImmediate(() => {
          const pending = !req.complete;
          trySend(req, res, response, pending);
          // A peer that neither reads the answer nor closes must not keep the socket open.
          if (pending) destroyAfterGrace(req.socket);
        });
      });
  };

  const serverOptions = {
    cert: options.tls.cert,
    key: options.tls.key,
    handshakeTimeout: limits.handshakeTimeoutMs,
    maxHeaderSize: limits.maxHeaderBytes,
    ...CLIENT_CERTIFICATE_TLS_OPTIONS,
  };
  /**
   * A request, its headers in. `expectsContinue`: the client sent `Expect: 100-continue` and waits
   * for `100 Continue` before its body (Node's 'checkContinue'): it gets it only once the headers
   * are accepted; a request they refuse gets its final answer instead, and its body is never sent.
   */
  const onRequest = (req: IncomingMessage, res: ServerResponse, expectsContinue = false): void => {
    const to = target(req.url);
    const { surface } = to;
    const maxBytes =
      surface === 'hub' ? MAX_HUB_BODY_BYTES : surface === 'service' ? MAX_SERVICE_BODY_BYTES : MAX_BODY_BYTES;
    // A body that stops arriving (a Content-Length larger than what is sent): the connection is
    // idle for limits.idleTimeoutMs. Node then emits 'timeout' on the unfinished request; without
    // this it destroyed the socket and the client saw only "socket hang up" (2,114 of 10,000
    // HTTPS fuzz inputs). HTTP has an answer for it, 408, given like every other error.
    req.once('timeout', () => {
      if (req.complete) return;
      const message = `The request body did not arrive in time: nothing was received for ${limits.idleTimeoutMs / 1000} s (limits.idleTimeoutMs) before the body it announced (${req.headers['content-length'] === undefined ? 'chunked' : `Content-Length ${clip(req.headers['content-length'])}`}) was complete.`;
      trySend(
        req,
        res,
        surface === 'hub' ? hubRequestTimeout(message) : errorResponse(DpsErrorCode.RequestTimeout, message),
        true,
      );
      // A peer that never reads the answer or closes must not keep the socket open.
      destroyAfterGrace(req.socket);
    });
    // What the headers decide, before the body is read. A request its credentials alone refuse
    // (service, hub and DPS device routes) is answered from them, the body never read, and its
    // connection closed: nothing of a client without valid credentials is buffered (1 MiB a service
    // request, 256 KiB a hub request, ~97 KB a device request, up to the idle timeout for a body
    // that never completes). One they accept is handled with what was checked: checked once.
    let decision: Decision | undefined;
    try {
      decision = decide(req, to);
    } catch {
      decision = undefined; // the store failed: decided again, and answered, once the body is read
    }
    if (decision && refusedForCredentials(decision)) {
      respond(req, res, EMPTY_BODY, decision, to, true);
      destroyAfterGrace(req.socket);
      return;
    }
    // Refused for what else its request line and headers say (404/405, api-version, 415): answered
    // at once too, the body not read. A body already all in when the answer is written (none, or a
    // small one that came with the headers: an SDK's `{}`) is discarded by Node and the connection
    // kept for the next request, as when the body was read first; one still on its way (a large
    // body, or one announced and never sent) gets the answer with `Connection: close`, and Node
    // discards what arrives until the connection closes (within destroyAfterGrace at most).
    if (decision && answeredFromHeaders(decision)) {
      respond(req, res, EMPTY_BODY, decision, to, 'unless-complete');
      return;
    }
    if (expectsContinue) res.writeContinue();
    readBody(req, maxBytes).then(
      (body) => respond(req, res, body, decision, to),
      (err: Error) => {
        if (err instanceof BodyTooLargeError) {
          const message = `The request body is larger than ${maxBytes} bytes.`;
          trySend(
            req,
            res,
            surface === 'hub'
              ? hubBodyTooLarge()
              : surface === 'service'
                ? serviceError(DpsErrorCode.ArgumentInvalid, message)
                : errorResponse(DpsErrorCode.InvalidRequestBody, message),
            true,
          );
          return;
        }
        // The client went away mid-body: nobody is left to answer.
        log.debug('https.request', `${clip(req.method ?? '')} ${clipUrl(req.url ?? '')}: ${err.message}`);
      },
    );
  };
  const server = https.createServer(serverOptions, (req, res) => onRequest(req, res));
  // Without this listener Node answers `100 Continue` to every such request before the handler
  // runs: a client refused from its headers then sent its whole body for nothing (then the answer,
  // and a close while it may still be sending).
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true));
  // An upgrade no handler takes (another path, WebSockets turned off): say so in the log and to the
  // client instead of a bare 404 the SDKs report as NotConnectedError.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    for (const handler of options.upgradeHandlers ?? []) if (handler(req, socket, head)) return;
    const protocol = req.headers['sec-websocket-protocol'] ?? 'none';
    const message = `WebSocket upgrade (${clip(String(req.headers.upgrade))}, subprotocol ${clip(String(protocol))}) to ${clipUrl(req.url ?? '')} refused: ${
      options.upgradeHandlers?.length
        ? `the WebSocket transports (MQTT and AMQP) are served at ${IOTHUB_WEBSOCKET_PATH}`
        : 'the emulator serves no WebSocket transport on this listener; use MQTT over TLS, AMQP over TLS or HTTPS'
    }.`;
    log.warn('https.websocket', message, {
      method: req.method,
      path: clipUrl(req.url ?? ''),
      status: 400,
      subprotocol: clip(String(protocol)),
    });
    const body = JSON.stringify(errorResponse(DpsErrorCode.InvalidRequestBody, message).body);
    socket.on('error', () => {});
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  // Between requests a kept-alive connection is kept as long as Azure keeps one, and a listener full
  // of idle ones closes the one idle longest for a new connection (trackIdleConnections).
  const idleConnections = trackIdleConnections(server);
  const { sockets } = boundConnections(server, limits, log, 'HTTPS', idleConnections.oldestIdle);
  server.keepAliveTimeout = AZURE_IDLE_TIMEOUT_MS;
  // Node's defaults, set here because the answer says them (clientErrorResponse, 408): the headers
  // within 60 s and the whole request within 300 s of its start. Neither counts a kept-alive
  // connection's wait between requests (Node >= 18 starts both at the request's first byte).
  server.headersTimeout = 60_000;
  server.requestTimeout = 300_000;
  // Node re-arms each connection's socket timeout per request from `server.timeout` (0: none),
  // replacing the idle timeout set at the handshake; a request left half-sent would otherwise be
  // bounded only by requestTimeout (300 s). Between requests keepAliveTimeout replaces it.
  server.timeout = limits.idleTimeoutMs;
  // `CONNECT host:port` (a proxy tunnel request) never reaches the request handler: without a
  // listener Node drops the connection unanswered. DPS answers every request with JSON.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    log.debug('https.request', `CONNECT ${clipUrl(req.url ?? '')}: not a DPS API method`);
    socket.on('error', () => {});
    socket.end(
      rawHttpResponse(errorResponse(DpsErrorCode.MethodNotAllowed, 'The DPS APIs do not serve the CONNECT method.')),
    );
    destroyAfterGrace(socket);
  });
  server.on('tlsClientError', logTlsClientError(log, { kind: 'https', port: 'HTTPS', scheme: 'https' }));
  /**
   * Whether the request Node's parser refused (clientError) is for a hub path, as far as the chunk
   * it failed in tells: its `rawPacket` begins with an HTTP method and a target the listener would
   * route to a hub, and no complete head comes before the point of failure (else the chunk began
   * with an earlier request, pipelined, and where the refused one starts is unknown; so is an error
   * in a body, as an invalid chunk size). Not HTTP (an unknown method) is no request for any path.
   * A head that spans chunks (TLS records of at most 16 KiB: any head over the default
   * `limits.maxHeaderBytes`) fails in a later chunk, without its request line: unknown too. Read
   * from the error, not kept per connection: a 'data' listener would take every connection off
   * Node's native parsing (unconsume), measured +4.9% server CPU per keep-alive request.
   */
  const refusedOnHubPath = (err: NodeJS.ErrnoException & { rawPacket?: unknown; bytesParsed?: unknown }): boolean => {
    if (!Buffer.isBuffer(err.rawPacket)) return false;
    const failedAt = typeof err.bytesParsed === 'number' ? err.bytesParsed : err.rawPacket.length;
    // A head that ends before the point of failure is an earlier request's (the refused head's own
    // end is where a too-large one fails): the refused one starts somewhere after it.
    const headEnd = err.rawPacket.indexOf('\r\n\r\n');
    if (headEnd !== -1 && headEnd + 4 < failedAt) return false;
    const start = err.rawPacket.toString('latin1', 0, Math.min(err.rawPacket.length, MAX_READ_REQUEST_LINE));
    const requestLine = /^([A-Z-]+) ([^ \r\n]+)/.exec(start);
    return (
      requestLine?.[1] !== undefined &&
      requestLine[2] !== undefined &&
      METHODS.includes(requestLine[1]) &&
      target(requestLine[2]).surface === 'hub'
    );
  };

  // Connections answered for a request Node could not parse: Node raises clientError again for
  // every later chunk (its parser stays in its error state), and the answer is given once.
  const refused = new WeakSet<Duplex>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (refused.has(socket)) return;
    if (err.code === 'HPE_INVALID_METHOD' || err.code === 'HPE_INVALID_CONSTANT') {
      log.warn(
        'https.protocol',
        `a client on the HTTPS port sent something that is not HTTP (${err.code}): the port serves the DPS device and service REST APIs`,
        {
          code: err.code,
        },
      );
    } else {
      log.debug('https.client', err.message, { code: err.code });
    }
    const answer = clientErrorResponse(
      err,
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeoutMs: server.headersTimeout,
        requestTimeoutMs: server.requestTimeout,
      },
      refusedOnHubPath(err) ? 'hub' : 'dps',
    );
    if (!answer || !socket.writable) {
      socket.destroy();
      return;
    }
    refused.add(socket);
    answerAfterResponses(socket, answer);
  });
  /**
   * Writes the answer to a request Node could not parse and closes the connection, after the
   * responses under way on it: those of the requests a pipelining client sent before the bad one,
   * read with it. Written in between, the answer would corrupt them; Node's own handler destroys the
   * connection then, which dropped them. Each of those responses finishes (the API's answers are
   * bounded), or its connection closes.
   */
  function answerAfterResponses(socket: Duplex, answer: DeviceApiResponse | HttpAnswer): void {
    const busy = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (busy) {
      // Node's own 'finish' listener runs first: it hands the socket to the next response, if any.
      busy.once('finish', () => answerAfterResponses(socket, answer));
      return;
    }
    // Not writable: Node is closing it after a response that said Connection: close.
    if (!socket.writable) return;
    socket.end(rawHttpResponse(answer));
    // A peer that never closes its side must not keep the socket open.
    destroyAfterGrace(socket);
  }

  const port = await listen(server, {
    label: 'HTTPS',
    host: options.host,
    port: options.port,
    portSetting: '--https-port (httpsPort)',
    lowPortAlternative:
      '(the Node HTTP transport then needs an https.Agent with defaultPort, see the README) or disable HTTPS with --no-https',
  });
  return {
    host: options.host,
    port,
    async close() {
      warnings.flush();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Adds `Location` to a 202: the operation-status URL a device polls (absolute, from the request's
 * Host, with the request's api-version).
 */
function withLocation(
  response: DeviceApiResponse,
  req: IncomingMessage,
  route: { idScope: string; registrationId: string },
  url: URL,
): DeviceApiResponse & { location?: string } {
  const operationId = (response.body as { operationId?: unknown }).operationId;
  if (response.status !== 202 || typeof operationId !== 'string') return response;
  const path = [route.idScope, 'registrations', route.registrationId, 'operations', operationId]
    .map(encodeURIComponent)
    .join('/');
  const query = `?api-version=${encodeURIComponent(url.searchParams.get('api-version') ?? '')}`;
  const host = req.headers.host;
  const location = host && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? `https://${host}/${path}${query}` : `/${path}${query}`;
  return { ...response, location };
}
