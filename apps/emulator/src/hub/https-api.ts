import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { decodeJson, parseSasToken } from '@dpskit/contracts';
import type { Logger } from '@dpskit/node-kit';
import { clip } from '../core/client-text.js';
import { isDatedApiVersion } from '../transport/https-routes.js';
import type { HttpAnswer } from '../transport/service-api.js';
import { C2dError, c2dHttpHeaders } from './core/c2d.js';
import { MethodError } from './core/direct-methods.js';
import { HubError, type HubRight, type HubService, TwinError } from './core/hub-service.js';
import { refuseOutOfRangeIntegers } from './core/twin.js';

/** Twins are at most 8 KB + 2 × 32 KB; device messages at most 256 KB (IoT Hub's limits). */
export const MAX_HUB_BODY_BYTES = 256 * 1024;

export interface HubRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The client certificate chain of the TLS connection (DER, the device's own first); X.509 devices. */
  clientCertificates?: readonly Uint8Array[];
  /** Aborted when the client's connection closes before the answer is written (a held method call is let go). */
  signal?: AbortSignal;
}

/**
 * The paths IoT Hub serves that DPS does not: the registry's `/devices`, `/twins`,
 * `/statistics/devices` and the device API.
 */
export function isHubPath(pathname: string): boolean {
  return /^\/(devices|twins)(\/|$)/i.test(pathname) || /^\/statistics\/devices\/?$/i.test(pathname);
}

/**
 * IoT Hub's REST error body (`Message: "ErrorCode:{code};{message}"`), which `azure-iothub` and
 * `azure-iot-device-http` parse into their error classes (404 `DeviceNotFound` →
 * `DeviceNotFoundError`, 412 → `InvalidEtagError`, …).
 */
export function hubError(status: number, code: string, message: string): HttpAnswer {
  const trackingId = randomUUID().replace(/-/g, '');
  return {
    status,
    headers: { 'iothub-errorcode': code, 'x-ms-request-id': trackingId },
    body: {
      Message: `ErrorCode:${code};${message}`,
      ExceptionMessage: `Tracking ID:${trackingId}-TimeStamp:${new Date().toISOString()}`,
    },
  };
}

/**
 * A hub request whose body is over `MAX_HUB_BODY_BYTES`: IoT Hub's answer to a message over its
 * 256 KB limit, 413 with error code 413001 `MessageTooLarge` (REST API "common error codes";
 * azure-iot-device-http turns a 413 into `MessageTooLargeError`), worded as the C# SDK's
 * `MessageTooLargeException` words it. The registry's twin and device bodies get the same answer:
 * what IoT Hub sends for those is not documented, and every one over the bound is over their own
 * limits (8 KB tags, 32 KB per property section) many times.
 */
export function hubBodyTooLarge(): HttpAnswer {
  return hubError(413, 'MessageTooLarge', `Message size cannot exceed ${MAX_HUB_BODY_BYTES} bytes.`);
}

/**
 * A hub request whose announced body stopped arriving (the listener's idle timeout): 408 in IoT
 * Hub's error shape like every other answer on a hub path (azure-iothub reads its message; it
 * raises `DeviceTimeoutError` for a 408). IoT Hub documents no error code for this: `RequestTimeout`
 * is the emulator's.
 */
export function hubRequestTimeout(message: string): HttpAnswer {
  return hubError(408, 'RequestTimeout', message);
}

/**
 * A direct method call's failure as IoT Hub answers it: the error serialized as JSON *inside*
 * `Message` (`{"Message":"{\"errorCode\":404103,\"trackingId\":…,\"message\":\"Timed out waiting for
 * device to connect.\",\"info\":{\"timeout\":\"00:00:00\"},\"timestampUtc\":…}","ExceptionMessage":""}`,
 * as reported from the service in azure-iot-cli-extension#54, Azure/iotedge#98 and
 * azure-iot-sdk-java#640), with the code's name in `iothub-errorcode`. azure-iothub cannot split
 * that `Message` (it looks for `ErrorCode:x;`), so it raises a plain `Error('Not found')` for the
 * 404s, `GatewayTimeoutError` for 504, `ArgumentError` for 400, with `response` and `responseBody`:
 * as against IoT Hub.
 */
export function methodErrorAnswer(error: MethodError): HttpAnswer {
  const trackingId = randomUUID().replace(/-/g, '');
  const now = new Date();
  return {
    status: error.status,
    headers: { 'iothub-errorcode': error.code, 'x-ms-request-id': trackingId },
    body: {
      Message: JSON.stringify({
        errorCode: error.errorCode,
        trackingId: `${trackingId}-G:0-TimeStamp:${now.toISOString()}`,
        message: error.message,
        ...(error.info ? { info: error.info } : {}),
        timestampUtc: now.toISOString(),
      }),
      ExceptionMessage: '',
    },
  };
}

/**
 * A hub request that failed in the emulator (a store fault, say): IoT Hub's 500 `ServerError`
 * (500001, REST API "common error codes"; azure-iothub raises `InternalServerError`), in IoT Hub's
 * error shape like every other answer on a hub path, not DPS's. IoT Hub's wording is not documented.
 */
export function hubServerError(): HttpAnswer {
  return hubError(500, 'ServerError', 'Internal server error.');
}

type Route =
  /** `GET /devices` (`Registry.list`), `POST /devices` (`addDevices`, `updateDevices`, `removeDevices`). */
  | { op: 'devices' }
  /** `POST /devices/query` (`Registry.createQuery`). */
  | { op: 'query' }
  /** `GET /statistics/devices` (`Registry.getRegistryStatistics`). */
  | { op: 'statistics' }
  | { op: 'twin'; deviceId: string }
  | { op: 'methods'; deviceId: string }
  | { op: 'module-methods'; deviceId: string; moduleId: string }
  | { op: 'device'; deviceId: string }
  /** `GET /devices/{id}/modules` (`Registry.getModulesOnDevice`). */
  | { op: 'modules'; deviceId: string }
  /** `/devices/{id}/modules/{mid}` (`addModule`, `getModule`, `updateModule`, `removeModule`). */
  | { op: 'module'; deviceId: string; moduleId: string }
  /** `/twins/{id}/modules/{mid}` (`getModuleTwin`, `updateModuleTwin`). */
  | { op: 'module-twin'; deviceId: string; moduleId: string }
  | { op: 'events'; deviceId: string }
  /** `DELETE /devices/{id}/commands`: purges the device's cloud-to-device queue. */
  | { op: 'commands'; deviceId: string }
  /** `lockToken`: a message's, to complete or reject (DELETE) or abandon (`…/abandon`, POST). */
  | { op: 'devicebound'; deviceId: string; lockToken?: string; abandon?: boolean }
  | { op: 'unknown' };

function route(method: string, pathname: string): Route {
  const parts = pathname.split('/').slice(1);
  const first = parts[0]?.toLowerCase();
  if (first === 'statistics' && parts[1]?.toLowerCase() === 'devices' && (parts.length === 2 || parts[2] === '')) {
    return { op: 'statistics' };
  }
  if (first === 'devices' && (parts.length === 1 || (parts.length === 2 && parts[1] === ''))) return { op: 'devices' };
  // A device may be named "query": only a POST is the query (GET/PUT/DELETE are that device's).
  if (first === 'devices' && parts.length === 2 && parts[1]?.toLowerCase() === 'query' && method === 'POST')
    return { op: 'query' };

  const decode = (part: string | undefined) => {
    try {
      return part ? decodeURIComponent(part) : undefined;
    } catch {
      return undefined;
    }
  };
  const deviceId = decode(parts[1]);
  if (!deviceId) return { op: 'unknown' };
  const kind = parts[0]?.toLowerCase();
  if (kind === 'twins' && parts.length === 2) return { op: 'twin', deviceId };
  if (kind === 'twins' && parts.length === 3 && parts[2]?.toLowerCase() === 'methods')
    return { op: 'methods', deviceId };
  // Module paths: the module id URL-decoded as the device id (the SDKs encodeURIComponent both).
  const moduleId = parts[2]?.toLowerCase() === 'modules' ? decode(parts[3]) : undefined;
  if (kind === 'twins' && moduleId !== undefined && parts.length === 4)
    return { op: 'module-twin', deviceId, moduleId };
  if (kind === 'twins' && moduleId !== undefined && parts.length === 5 && parts[4]?.toLowerCase() === 'methods')
    return { op: 'module-methods', deviceId, moduleId };
  if (kind !== 'devices') return { op: 'unknown' };
  if (parts.length === 2) return { op: 'device', deviceId };
  if (parts.length === 3 && parts[2]?.toLowerCase() === 'modules') return { op: 'modules', deviceId };
  if (moduleId !== undefined && parts.length === 4) return { op: 'module', deviceId, moduleId };
  const rest = parts.slice(2).join('/').toLowerCase();
  if (rest === 'messages/events') return { op: 'events', deviceId };
  if (rest === 'commands') return { op: 'commands', deviceId };
  if (rest === 'messages/devicebound') return { op: 'devicebound', deviceId };
  // `…/messages/devicebound/{lockToken}` and `…/{lockToken}/abandon`: the token as the SDKs put it
  // in the path (the ETag of the receive, unencoded: a GUID).
  const lockToken = decode(parts[4]);
  if (rest.startsWith('messages/devicebound/') && lockToken) {
    if (parts.length === 5) return { op: 'devicebound', deviceId, lockToken };
    if (parts.length === 6 && parts[5]?.toLowerCase() === 'abandon')
      return { op: 'devicebound', deviceId, lockToken, abandon: true };
  }
  return { op: 'unknown' };
}

/** The methods each registry route serves (the 405's `allows`). */
const ALLOWED_METHODS: Record<Exclude<Route['op'], 'unknown' | 'events' | 'devicebound'>, readonly string[]> = {
  twin: ['GET', 'PATCH', 'PUT'],
  methods: ['POST'],
  'module-methods': ['POST'],
  device: ['GET', 'PUT', 'DELETE'],
  modules: ['GET'],
  module: ['GET', 'PUT', 'DELETE'],
  'module-twin': ['GET', 'PATCH', 'PUT'],
  commands: ['DELETE'],
  devices: ['GET', 'POST'],
  query: ['POST'],
  statistics: ['GET'],
};

/**
 * Which hub a request is for: its `Host` when that names a hub (a device or client that reached the
 * emulator by the hub's name), else the hub its SAS token names (`sr={hub}` or
 * `sr={hub}/devices/{id}`: a client that reached it by `localhost`).
 */
export function hubOfRequest(hub: HubService, headers: IncomingHttpHeaders): string | undefined {
  const byHost = hub.hubNamed(headers.host);
  if (byHost) return byHost;
  const authorization = headers.authorization;
  if (!authorization) return undefined;
  try {
    const resource = parseSasToken(authorization).resource.replace(/^https?:\/\//i, '');
    return hub.hubNamed(resource.split('/')[0]);
  } catch {
    return undefined;
  }
}

/**
 * A hub request as far as its headers decide it (`authorizeHubRequest`): an answer already (`answer`;
 * `refused` when it is the 401 of credentials that do not hold, which the listener gives before it
 * reads the body), or the hub, route and identity `handleHubRequest` goes on with.
 */
export type HubGate =
  | { ok: false; answer: HttpAnswer; refused: boolean }
  | {
      ok: true;
      kind: 'registry';
      hubName: string;
      route: Extract<
        Route,
        {
          op:
            | 'twin'
            | 'device'
            | 'methods'
            | 'module-methods'
            | 'devices'
            | 'query'
            | 'statistics'
            | 'commands'
            | 'modules'
            | 'module'
            | 'module-twin';
        }
      >;
    }
  | {
      ok: true;
      kind: 'device';
      route: Extract<Route, { op: 'events' }>;
      /** The authenticated device, as the hub spells them. */
      device: { hub: string; deviceId: string };
    };

/**
 * Everything of a hub request its URL and headers decide, before its body is read: which hub, which
 * route, the api-version, and the credentials (a registry token's right, a device's SAS token or
 * certificate). Its refusals are the answers `handleHubRequest` gives; a refused device is reported
 * (`connect-refused`) here, once. Throws what the store throws (a device lookup), as before.
 */
export function authorizeHubRequest(hub: HubService, request: Omit<HubRequest, 'body'>, log: Logger): HubGate {
  const { method, url, headers } = request;
  const answer = (response: HttpAnswer, refused = false): HubGate => ({ ok: false, answer: response, refused });
  const hubName = hubOfRequest(hub, headers);
  if (!hubName) {
    log.warn(
      'https.unrouted',
      `${clip(method)} ${clip(url.pathname)} → 404: an IoT Hub path, but neither Host nor token names a hub`,
      { method: clip(method), path: clip(url.pathname), status: 404 },
    );
    return answer(
      hubError(
        404,
        'IotHubNotFound',
        `Neither the Host header nor the SAS token names one of the emulated hubs (${hub.hubs.join(', ')}).`,
      ),
    );
  }
  const r = route(method, url.pathname);
  if (r.op === 'unknown') {
    return answer(
      hubError(
        404,
        'NotFound',
        `The emulated hub serves /devices, /devices/{id}, /devices/{id}/modules[/{moduleId}], POST /devices/query, /twins/{id}[/modules/{moduleId}], POST /twins/{id}[/modules/{moduleId}]/methods, GET /statistics/devices, POST /devices/{id}/messages/events and /devices/{id}/messages/deviceBound, not ${clip(url.pathname)}.`,
      ),
    );
  }
  const apiVersion = url.searchParams.get('api-version') ?? '';
  if (!isDatedApiVersion(apiVersion)) {
    // IoT Hub's answer to a missing or unsupported api-version, byte for byte (Azure/Industrial-IoT#708,
    // azure-iot-sdks#828; azure-iot-sdk-node#617: a missing one); the reason goes to the log.
    log.warn(
      'hub.api-version',
      `${clip(method)} ${clip(url.pathname)} → 400 InvalidProtocolVersion: ${apiVersion === '' ? 'no api-version' : `api-version ${clip(apiVersion)} is no version (YYYY-MM-DD, perhaps -preview; the SDKs send 2021-04-12)`}`,
      { method: clip(method), path: clip(url.pathname), status: 400 },
    );
    return answer(hubError(400, 'InvalidProtocolVersion', 'BadRequest'));
  }
  if (r.op === 'events' || r.op === 'devicebound') {
    const auth = hub.authenticateDevice({
      hub: hubName,
      deviceId: r.deviceId,
      token: headers.authorization,
      ...(request.clientCertificates ? { clientCertificates: request.clientCertificates } : {}),
    });
    if (!auth.ok) {
      log.debug('hub.auth', `${clip(r.deviceId)} on ${hubName} over HTTPS: ${auth.reason} (${auth.detail})`, {
        hub: hubName,
        deviceId: clip(r.deviceId),
        reason: auth.reason,
      });
      hub.reportRefused(hubName, r.deviceId, 'https', auth.reason);
      return answer(hubError(401, 'IotHubUnauthorizedAccess', 'Unauthorized'), true);
    }
    if (r.op === 'events' && method !== 'POST') return answer(notAllowed(method, url.pathname, 'POST'));
    // The cloud-to-device queue's requests carry no body: answered from the headers (receive,
    // complete, reject, abandon), whatever body is announced (not read).
    if (r.op === 'devicebound')
      return answer(deviceBound(hub, r, method, url, { hub: auth.hub, deviceId: auth.deviceId }));
    return { ok: true, kind: 'device', route: r, device: { hub: auth.hub, deviceId: auth.deviceId } };
  }
  // Direct methods need ServiceConnect ("Anyone with service connect permissions on IoT Hub can
  // invoke a method on a device"), the registry RegistryRead or RegistryWrite; twins either, as
  // ServiceConnect "grants permission to access twins to update tags and desired properties, retrieve
  // reported properties" (azure-docs iot-hub-dev-guide-sas; the service policy reads twins over REST,
  // Azure/iot#6) while a query with it is refused (MicrosoftLearning/AZ-220…#26): RegistryRead.
  const registryRight: HubRight = method === 'GET' || r.op === 'query' ? 'RegistryRead' : 'RegistryWrite';
  const rights: readonly HubRight[] =
    r.op === 'methods' || r.op === 'module-methods' || r.op === 'commands'
      ? ['ServiceConnect']
      : r.op === 'twin' || r.op === 'module-twin'
        ? [registryRight, 'ServiceConnect']
        : [registryRight]; // a query reads, though it is a POST
  // The token's sr reaches the path by segment (`{hub}/devices` reads the devices, not /twins).
  const auth = hub.authorizeRegistry(hubName, headers.authorization, rights, decodedPath(url.pathname));
  if (!auth.ok) {
    // A warning, as the service API's refused tokens are (service.auth): no other line says it. The
    // listener's logger limits it to one in full a second, the rest counted by reason (https.ts).
    log.warn(
      'hub.auth',
      `${clip(method)} ${clip(url.pathname)} on ${hubName} → 401: ${auth.reason} (${clip(auth.detail)})`,
      {
        hub: hubName,
        method: clip(method),
        path: clip(url.pathname),
        status: 401,
        reason: auth.reason,
      },
    );
    return answer(hubError(401, 'IotHubUnauthorizedAccess', 'Unauthorized'), true);
  }
  // The method last, after the credentials, as the routes checked it before (the 405 was given after the body).
  const allowed = ALLOWED_METHODS[r.op];
  if (!allowed.includes(method)) return answer(notAllowed(method, url.pathname, allowed.join(', ')));
  return { ok: true, kind: 'registry', hubName, route: r };
}

/**
 * The emulated hubs over HTTPS: the registry's device and twin routes (as `azure-iothub`'s
 * `Registry` calls them) and device-to-cloud telemetry (as `azure-iot-device-http` sends it).
 * `gate` is what `authorizeHubRequest` decided from the request's headers (the listener's, before it
 * read the body: the credentials are checked once); without it, it is decided here.
 */
export function handleHubRequest(
  hub: HubService,
  request: HubRequest,
  log: Logger,
  gate: HubGate = authorizeHubRequest(hub, request, log),
): HttpAnswer | Promise<HttpAnswer> {
  if (!gate.ok) return gate.answer;
  const { method, headers } = request;
  try {
    if (gate.kind === 'device') return deviceRequest(hub, gate.route, request, gate.device);
    const { hubName, route: r } = gate;
    if (r.op === 'methods') {
      // Answered when the device answers, or its timeouts run out (at most 300 + 300 s).
      return hub.invokeMethod(hubName, r.deviceId, request.body.toString('utf8'), request.signal).then(
        (result) => ok(result),
        (err: unknown) => {
          if (err instanceof MethodError) return methodErrorAnswer(err);
          throw err;
        },
      );
    }
    if (r.op === 'module-methods') {
      return hub
        .invokeModuleMethod(hubName, r.deviceId, r.moduleId, request.body.toString('utf8'), request.signal)
        .then(
          (result) => ok(result),
          (err: unknown) => {
            if (err instanceof MethodError) return methodErrorAnswer(err);
            throw err;
          },
        );
    }
    if (r.op === 'statistics') return ok(hub.registryStatistics(hubName));
    // IoT Hub's PurgeMessageQueueResult (REST API "Cloud To Device Messages - Purge Cloud To Device
    // Message Queue"); its moduleId is left out, as no module is emulated.
    if (r.op === 'commands')
      return ok({ totalMessagesPurged: hub.purgeCloudToDevice(hubName, r.deviceId), deviceId: r.deviceId });
    if (r.op === 'devices') {
      if (method === 'GET') return ok(hub.listDevices(hubName, request.url.searchParams.get('top')));
      return ok(hub.bulkDevices(hubName, json(request.body.toString('utf8')))); // POST
    }
    if (r.op === 'query') {
      const page = hub.queryTwins(
        hubName,
        json(request.body.toString('utf8')),
        header(headers, 'x-ms-max-item-count'),
        header(headers, 'x-ms-continuation'),
      );
      return {
        status: 200,
        headers: {
          'x-ms-item-type': page.itemType,
          // The page size as applied, not as sent.
          'x-ms-max-item-count': String(page.pageSize),
          ...(page.continuationToken ? { 'x-ms-continuation': page.continuationToken } : {}),
        },
        body: page.items,
      };
    }
    const ifMatch = typeof headers['if-match'] === 'string' ? headers['if-match'] : undefined;
    // The gate let through only the methods each route allows.
    if (r.op === 'twin' || r.op === 'module-twin') {
      const moduleId = r.op === 'module-twin' ? r.moduleId : undefined;
      if (method === 'GET')
        return ok(
          moduleId === undefined ? hub.getTwin(hubName, r.deviceId) : hub.getModuleTwin(hubName, r.deviceId, moduleId),
        );
      // PATCH or PUT. The text decoded once: parsed, then scanned for integers that parsing rounded.
      const text = request.body.toString('utf8');
      const twin = json(text);
      refuseOutOfRangeIntegers(text);
      if (method === 'PUT') return ok(hub.replaceTwin(hubName, r.deviceId, twin, ifMatch, moduleId));
      return ok(hub.updateTwin(hubName, r.deviceId, twin, ifMatch, moduleId));
    }
    if (r.op === 'modules') return ok(hub.listModules(hubName, r.deviceId)); // GET
    if (r.op === 'module') {
      if (method === 'GET') return ok(hub.getModule(hubName, r.deviceId, r.moduleId));
      if (method === 'PUT')
        return ok(hub.putModule(hubName, r.deviceId, r.moduleId, json(request.body.toString('utf8')), ifMatch));
      hub.deleteModule(hubName, r.deviceId, r.moduleId, ifMatch); // DELETE
      return { status: 204 };
    }
    if (method === 'GET') return ok(hub.getDevice(hubName, r.deviceId));
    if (method === 'PUT') return ok(hub.putDevice(hubName, r.deviceId, json(request.body.toString('utf8')), ifMatch));
    hub.deleteDevice(hubName, r.deviceId, ifMatch); // DELETE
    return { status: 204 };
  } catch (err) {
    if (err instanceof HubError) return hubError(err.status, err.code, err.message);
    if (err instanceof TwinError) return hubError(err.code === 'PreconditionFailed' ? 412 : 400, err.code, err.message);
    throw err;
  }
}

/** A device's own request (telemetry, the cloud-to-device queue), its credentials checked. */
function deviceRequest(
  hub: HubService,
  _r: { op: 'events'; deviceId: string },
  request: HubRequest,
  device: { hub: string; deviceId: string },
): HttpAnswer {
  // POST: the gate answered any other method 405.
  hub.receiveTelemetry(device.hub, device.deviceId, {
    body: request.body,
    properties: telemetryProperties(request.headers),
    transport: 'https',
  });
  return { status: 204 };
}

/** Application properties (`iothub-app-*`) and system properties (`iothub-messageid`, …) of an HTTP message. */
function telemetryProperties(headers: IncomingHttpHeaders): Record<string, string> {
  const properties: Record<string, string> = {};
  const system: Record<string, string> = {
    'iothub-messageid': '$.mid',
    'iothub-correlationid': '$.cid',
    'iothub-contenttype': '$.ct',
    'iothub-contentencoding': '$.ce',
  };
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') continue;
    if (name.startsWith('iothub-app-')) properties[name.slice('iothub-app-'.length)] = value;
    else if (system[name]) properties[system[name]] = value;
  }
  return properties;
}

/**
 * The device's cloud-to-device queue over HTTPS, as `azure-iot-device-http` uses it (REST API
 * "Device - Receive/Complete/Reject/Abandon Device Bound Notification"): `GET …/messages/deviceBound`
 * takes the oldest Enqueued message and locks it for a minute (200, the body as sent, the lock
 * token as `ETag` in quotes and the properties as `iothub-*` headers; 204 when none is Enqueued);
 * `DELETE …/{lockToken}` completes it, with `?reject` rejects it; `POST …/{lockToken}/abandon`
 * abandons it; each 204, or 412 DeviceMessageLockLost (412002) when no message is locked under the token.
 */
function deviceBound(
  hub: HubService,
  r: Extract<Route, { op: 'devicebound' }>,
  method: string,
  url: URL,
  device: { hub: string; deviceId: string },
): HttpAnswer {
  if (r.lockToken === undefined) {
    if (method !== 'GET') return notAllowed(method, url.pathname, 'GET');
    const message = hub.receiveCloudToDevice(device.hub, device.deviceId, 'https');
    if (!message) return { status: 204 };
    return {
      status: 200,
      headers: { 'Content-Type': 'application/octet-stream', ...c2dHttpHeaders(message) },
      body: message.body,
    };
  }
  const expected = r.abandon ? 'POST' : 'DELETE';
  if (method !== expected) return notAllowed(method, url.pathname, expected);
  const action = r.abandon ? 'abandon' : url.searchParams.has('reject') ? 'reject' : 'complete';
  try {
    hub.settleCloudToDevice(device.hub, device.deviceId, r.lockToken, action, 'https');
  } catch (err) {
    if (err instanceof C2dError) return hubError(err.status, err.code, err.message);
    throw err;
  }
  return { status: 204 };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function ok(body: unknown): HttpAnswer {
  return { status: 200, body };
}

function notAllowed(method: string, path: string, allowed: string): HttpAnswer {
  return hubError(405, 'MethodNotAllowed', `${clip(path)} allows ${allowed}, not ${clip(method)}.`);
}

function json(text: string): unknown {
  const decoded = decodeJson(text, { maxDepth: 32 });
  if (!decoded.ok) throw new HubError(400, 'ArgumentInvalid', `The body is not valid JSON: ${decoded.reason}`);
  return decoded.value;
}

/** A request path without its leading slash, percent-decoded as a token's `sr` is (as sent if it is not valid percent-encoding). */
function decodedPath(pathname: string): string {
  const path = pathname.replace(/^\/+/, '');
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
