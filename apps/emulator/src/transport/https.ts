import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { DpsErrorCode } from '@dpskit/contracts';
import { BodyTooLargeError, type Logger, listen, readBody } from '@dpskit/node-kit';
import { type DeviceApi, type DeviceApiResponse, errorResponse, MAX_DEVICE_MESSAGE_BYTES } from '../core/device-api.js';
import { clientErrorResponse, rawHttpResponse } from './https-client-errors.js';
import { responseHeaders } from './https-headers.js';
import { matchRoute } from './https-routes.js';
import type { RunningTransport } from './mqtt.js';

export interface HttpsTransportOptions {
  api: DeviceApi;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  log: Logger;
}

/** Read a little more than DPS's 96 KB limit so that DeviceApi can say how large the body was. */
const MAX_BODY_BYTES = MAX_DEVICE_MESSAGE_BYTES + 1024;

/**
 * DPS's device REST API on node:https. Every answer is JSON with
 * `Content-Type: application/json; charset=utf-8` (the SDK parses nothing else), a `retry-after`
 * header (seconds) while `assigning`, and a DPS error body for every status ≥ 300. A bad request
 * never ends the server.
 */
export async function startHttpsTransport(options: HttpsTransportOptions): Promise<RunningTransport> {
  const { api, log } = options;

  const handle = (req: IncomingMessage, body: Buffer): DeviceApiResponse | Promise<DeviceApiResponse> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://dps.invalid');
    } catch {
      // e.g. `//[`: parsed as an authority that is no valid host.
      return errorResponse(DpsErrorCode.NotFound, `The DPS device API has no resource at ${req.url}.`);
    }
    const route = matchRoute(req.method ?? 'GET', url.pathname);
    if (route.kind === 'not-found') {
      return errorResponse(DpsErrorCode.NotFound, `The DPS device API has no resource at ${url.pathname}.`);
    }
    if (route.kind === 'method-not-allowed') {
      return errorResponse(DpsErrorCode.MethodNotAllowed, `Use ${route.allowed} for ${url.pathname}.`);
    }
    if (!url.searchParams.get('api-version')) {
      return errorResponse(
        DpsErrorCode.InvalidRequestBody,
        'The api-version query parameter is required (for example api-version=2021-10-01).',
      );
    }
    const attestation = api.service.attest({
      requestedIdScope: route.idScope,
      registrationId: route.registrationId,
      token: req.headers.authorization,
    });
    if (!attestation.ok) {
      log.debug('https.auth', `${attestation.registrationId}: ${attestation.reason} (${attestation.detail})`, {
        registrationId: attestation.registrationId,
        reason: attestation.reason,
      });
    }
    if (route.kind === 'register') {
      return withLocation(api.register(attestation, body, 'https'), req, route, url);
    }
    if (route.kind === 'operation-status') {
      return api
        .operationStatus(attestation, route.operationId, 'https')
        .then((response) => withLocation(response, req, route, url));
    }
    return api.statusLookup(attestation);
  };

  const send = (res: ServerResponse, response: DeviceApiResponse, close = false) => {
    if (res.headersSent || res.destroyed) return; // the device left while a poll was held
    const text = JSON.stringify(response.body);
    res.writeHead(response.status, responseHeaders(response, Buffer.byteLength(text), close));
    res.end(text);
  };

  const server = https.createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    readBody(req, MAX_BODY_BYTES).then(
      (body) => {
        Promise.resolve()
          .then(() => handle(req, body))
          .catch((err: Error) => {
            log.error('https.request', `${req.method} ${req.url}: ${err.message}`, { stack: err.stack });
            return errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
          })
          .then((response) => send(res, response));
      },
      (err: Error) => {
        if (err instanceof BodyTooLargeError) {
          send(
            res,
            errorResponse(DpsErrorCode.InvalidRequestBody, `The request body is larger than ${MAX_BODY_BYTES} bytes.`),
            true,
          );
          return;
        }
        // The client went away mid-body: nobody is left to answer.
        log.debug('https.request', `${req.method} ${req.url}: ${err.message}`);
      },
    );
  });
  server.on('tlsClientError', (err) => log.debug('https.tls', `TLS handshake failed: ${err.message}`));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    log.debug('https.client', err.message, { code: err.code });
    const answer = clientErrorResponse(err, {
      maxHeaderSize: http.maxHeaderSize,
      headersTimeoutMs: server.headersTimeout,
      requestTimeoutMs: server.requestTimeout,
    });
    // As Node's own handler does: answer only if no response is under way on this connection
    // (pipelined requests), or the answer would corrupt it.
    const busy = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
    if (!answer || busy || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(rawHttpResponse(answer));
    // A peer that never closes its side must not keep the socket open.
    setTimeout(() => socket.destroy(), 5_000).unref();
  });

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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
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
