import type { IncomingHttpHeaders } from 'node:http';
import {
  createErrorBody,
  DEFAULT_MAX_JSON_DEPTH,
  DpsErrorCode,
  DpsErrorMessage,
  decodeJson,
  statusOfErrorCode,
} from '@dpskit/contracts';
import type { Logger } from '@dpskit/node-kit';
import { clip } from '../core/client-text.js';
import { decodeUtf8 } from '../core/device-api.js';
import type { EnrollmentService, Outcome, QueryPage } from '../core/enrollments/service.js';
import { authorizeServiceRequest, type ServiceRight, type SharedAccessPolicy } from '../core/service-auth.js';
import { initialTwinIntegerProblem } from '../hub/core/twin.js';
import { isDatedApiVersion } from './https-routes.js';
import { matchServiceRoute } from './service-routes.js';

/** Enrollments carry certificates; ten of them in a bulk operation stay well below this. */
export const MAX_SERVICE_BODY_BYTES = 1024 * 1024;

export interface HttpAnswer {
  status: number;
  headers?: Record<string, string>;
  /** Absent for 204. */
  body?: unknown;
}

export interface ServiceApiOptions {
  enrollments: EnrollmentService;
  policies: () => readonly SharedAccessPolicy[];
  log: Logger;
  now?: () => Date;
  /** Deepest JSON nesting accepted in a body (default `DEFAULT_MAX_JSON_DEPTH`, the emulator's `limits.maxJsonDepth`). */
  maxJsonDepth?: number;
}

export interface ServiceRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /**
   * What `authorizeBeforeBody` granted this request from its headers: its SAS is then not checked
   * again (once, when the headers arrived: a token that expires while a slow body arrives is not
   * refused after the body was read). Used only for the method and path it was granted for.
   */
  authorized?: ServiceAuthorization;
}

/** A request's SAS checked against the policies for the right its route needs (`authorizeBeforeBody`). */
export interface ServiceAuthorization {
  readonly method: string;
  readonly path: string;
  readonly policy: SharedAccessPolicy;
}

export function serviceError(errorCode: number, message: string): HttpAnswer {
  return {
    status: statusOfErrorCode(errorCode),
    headers: { 'x-ms-error-code': String(errorCode) },
    body: createErrorBody(errorCode, message),
  };
}

const ITEM_TYPES = { group: 'EnrollmentGroup', individual: 'Enrollment', registrations: 'DeviceRegistration' } as const;

/**
 * The DPS service API over HTTP: route, authorize (SAS against the shared access policies), parse
 * the JSON body, call the enrollment service, answer with DPS's status, headers and bodies.
 */
export function handleServiceRequest(options: ServiceApiOptions, request: ServiceRequest): HttpAnswer {
  const { method, url, headers, log } = { ...request, log: options.log };
  const path = url.pathname;
  // What the client chose goes into logs and messages bounded (client-text.ts).
  const shownPath = clip(path);
  const route = matchServiceRoute(method, path);
  if (route.op === 'not-found' || route.op === 'method-not-allowed')
    return unroutedAnswer(log, method, shownPath, route);

  const granted = request.authorized;
  const auth =
    granted && granted.method === method && granted.path === path
      ? { ok: true as const, policy: granted.policy }
      : authorize(options, method, shownPath, headers, route.right);
  if (!auth.ok) return auth.answer;
  const versionProblem = apiVersionAnswer(url);
  if (versionProblem) return versionProblem;

  const needsBody = route.op === 'put' || route.op === 'bulk' || route.op === 'query';
  let body: unknown;
  if (request.body.length > 0) {
    const mediaTypeProblem = unsupportedMediaType(header(headers, 'content-type'));
    if (mediaTypeProblem) return serviceError(DpsErrorCode.UnsupportedMediaType, mediaTypeProblem);
    const text = decodeUtf8(request.body);
    if (text === undefined) return serviceError(DpsErrorCode.ArgumentInvalid, 'The request body is not valid UTF-8.');
    // Depth-bounded like every body the emulator parses: what follows (schemas, the store's
    // JSON.stringify, structuredClone) recurses and would overflow on deep input.
    const decoded = decodeJson(text, { maxDepth: options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH });
    if (!decoded.ok) {
      return serviceError(DpsErrorCode.ArgumentInvalid, `The request body is not valid JSON: ${decoded.reason}.`);
    }
    body = decoded.value;
    const unstorable = unstorableValue(body);
    if (unstorable !== undefined) {
      return serviceError(DpsErrorCode.ArgumentInvalid, `Invalid ${clip(unstorable.path)}: ${unstorable.cause}.`);
    }
    // An enrollment's initialTwin (a bulk operation's too), read from the text: parsed, an integer
    // past ±2^53 is already rounded, and the hub that creates the twin would refuse it (400).
    const integer =
      route.op === 'put' || route.op === 'bulk'
        ? initialTwinIntegerProblem(text, '(?:enrollments\\[\\d+\\]\\.)?initialTwin')
        : undefined;
    if (integer !== undefined) {
      return serviceError(DpsErrorCode.ArgumentInvalid, `Invalid ${clip(integer.path)}: ${integer.cause}.`);
    }
  } else if (needsBody) {
    return serviceError(DpsErrorCode.ArgumentInvalid, `${method} ${shownPath} needs a JSON body.`);
  }

  const service = options.enrollments;
  const ifMatch = header(headers, 'if-match');
  const pageSize = header(headers, 'x-ms-max-item-count');
  const continuation = header(headers, 'x-ms-continuation');
  const answer = <T>(outcome: Outcome<T>, ok: (value: T) => HttpAnswer): HttpAnswer =>
    outcome.ok ? ok(outcome.value) : serviceError(outcome.errorCode, outcome.message);
  const json = (value: unknown): HttpAnswer => ({ status: 200, body: value });
  const noContent = (): HttpAnswer => ({ status: 204 });
  // The page size as applied, not as sent (the client's text was echoed: '0005', 10^20).
  const page =
    (type: keyof typeof ITEM_TYPES) =>
    (value: QueryPage): HttpAnswer => ({
      status: 200,
      headers: {
        'x-ms-item-type': ITEM_TYPES[type],
        'x-ms-max-item-count': String(value.pageSize),
        ...(value.continuationToken ? { 'x-ms-continuation': value.continuationToken } : {}),
      },
      body: value.items,
    });

  let result: HttpAnswer;
  switch (route.op) {
    case 'get':
      result = answer(service.get(route.kind, route.id), json);
      break;
    case 'put':
      result = answer(service.put(route.kind, route.id, body, ifMatch), json);
      break;
    case 'delete':
      result = answer(service.delete(route.kind, route.id, ifMatch), noContent);
      break;
    case 'attestation':
      result = answer(service.attestationMechanism(route.kind, route.id), json);
      break;
    case 'query':
      result = answer(service.query(route.kind, body, pageSize, continuation), page(route.kind));
      break;
    case 'bulk':
      result = answer(service.bulk(body), json);
      break;
    case 'get-registration':
      result = answer(service.registration(route.id), json);
      break;
    case 'delete-registration':
      result = answer(service.deleteRegistration(route.id, ifMatch), noContent);
      break;
    case 'query-registrations':
      result = answer(service.queryRegistrations(route.groupId, body, pageSize, continuation), page('registrations'));
      break;
  }
  log.debug('service.request', `${method} ${shownPath} → ${result.status}`, {
    method,
    path: shownPath,
    status: result.status,
    policy: auth.policy.keyName,
  });
  return result;
}

/** The request's SAS checked for the right its route needs; a refusal is logged (never the token) and answered 401. */
function authorize(
  options: ServiceApiOptions,
  method: string,
  shownPath: string,
  headers: IncomingHttpHeaders,
  right: ServiceRight,
): { ok: true; policy: SharedAccessPolicy } | { ok: false; answer: HttpAnswer } {
  const hostHeader = headers.host ?? '';
  const auth = authorizeServiceRequest({
    authorization: headers.authorization,
    hosts: [hostHeader, hostHeader.replace(/:\d+$/, '')].filter(Boolean),
    policies: options.policies(),
    required: right,
    now: (options.now ?? (() => new Date()))(),
  });
  if (auth.ok) return auth;
  // The listener's logger limits these (https.ts, HTTPS_LIMITED_WARNINGS): at most one in full a second.
  options.log.warn('service.auth', `${method} ${shownPath} → 401: ${auth.reason}: ${clip(auth.detail)}`, {
    method,
    path: shownPath,
    status: 401,
    reason: auth.reason,
  });
  return { ok: false, answer: serviceError(DpsErrorCode.Unauthorized, DpsErrorMessage.unauthorized) };
}

/** The 404 or 405 of a request no service route takes, logged (`https.unrouted`, limited by the listener). */
function unroutedAnswer(
  log: Logger,
  method: string,
  shownPath: string,
  route: { op: 'not-found' } | { op: 'method-not-allowed'; allowed: string },
): HttpAnswer {
  if (route.op === 'not-found') {
    log.warn('https.unrouted', `${method} ${shownPath} → 404: not a DPS service API resource`, {
      method,
      path: shownPath,
      status: 404,
    });
    return serviceError(
      DpsErrorCode.NotFound,
      `The DPS service API has no resource at ${shownPath}. It serves /enrollmentGroups/{id}, /enrollments/{id}, their /query and /{id}/attestationmechanism, bulk POST /enrollments, /registrations/{id} and /registrations/{groupId}/query.`,
    );
  }
  log.warn('https.unrouted', `${method} ${shownPath} → 405: the DPS service API allows ${route.allowed}`, {
    method,
    path: shownPath,
    status: 405,
  });
  return serviceError(
    DpsErrorCode.MethodNotAllowed,
    `The DPS service API allows ${route.allowed} for ${shownPath}, not ${method}.`,
  );
}

/** The 400 of a missing or undated api-version, or undefined. */
function apiVersionAnswer(url: URL): HttpAnswer | undefined {
  const apiVersion = url.searchParams.get('api-version');
  if (!apiVersion) {
    return serviceError(DpsErrorCode.ArgumentInvalid, 'The api-version query parameter is required (e.g. 2021-10-01).');
  }
  // DPS: `ErrorCode:ArgumentInvalid;Unknown api version` (Azure/azure-iot-sdk-csharp#3479).
  if (!isDatedApiVersion(apiVersion)) {
    return serviceError(
      DpsErrorCode.ArgumentInvalid,
      `Unknown api version "${clip(apiVersion)}": give a dated version such as 2021-10-01.`,
    );
  }
  return undefined;
}

/**
 * A service API request decided from its headers, before its body is read, in the order
 * handleServiceRequest checks the same: refused (`ok: false`), with the answer it would give after
 * the body — 404/405 (no route), 401 (`credentials`: no valid SAS for the route's right), 400 (the
 * api-version), 415 (a body announced by a `Content-Length` > 0 with a non-JSON `Content-Type`; a
 * chunked body's type is checked once it is read, as a chunked body may turn out empty) — or
 * authorized (`ok: true`: hand the authorization to handleServiceRequest, which then does not check
 * the SAS again). The listener answers a refusal without reading the body: nothing of a refused
 * request is buffered (up to 1 MiB a connection before).
 */
export function decideBeforeBody(
  options: ServiceApiOptions,
  request: Omit<ServiceRequest, 'body' | 'authorized'>,
): { ok: true; authorization: ServiceAuthorization } | { ok: false; answer: HttpAnswer; credentials: boolean } {
  const { method, url, headers } = request;
  const shownPath = clip(url.pathname);
  const route = matchServiceRoute(method, url.pathname);
  if (route.op === 'not-found' || route.op === 'method-not-allowed') {
    return { ok: false, answer: unroutedAnswer(options.log, method, shownPath, route), credentials: false };
  }
  const auth = authorize(options, method, shownPath, headers, route.right);
  if (!auth.ok) return { ok: false, answer: auth.answer, credentials: true };
  const refused = (answer: HttpAnswer) => ({ ok: false as const, answer, credentials: false });
  const versionProblem = apiVersionAnswer(url);
  if (versionProblem) return refused(versionProblem);
  if (Number(header(headers, 'content-length')) > 0) {
    const mediaTypeProblem = unsupportedMediaType(header(headers, 'content-type'));
    if (mediaTypeProblem) return refused(serviceError(DpsErrorCode.UnsupportedMediaType, mediaTypeProblem));
  }
  return { ok: true, authorization: { method, path: url.pathname, policy: auth.policy } };
}

/**
 * Why a body's Content-Type is not one the service API reads, or undefined. DPS documents 415 for
 * an unsupported media type. The official service clients send `application/json; charset=utf-8`
 * (Node, C, C#, Python) or `application/json` (Java, with its charset in a header of its own) with
 * every body; the Node SDK's body-less POST (attestationmechanism) sends none. Taken: JSON media
 * types as ASP.NET's JSON input reads them (`application/json`, `text/json`, `application/*+json`),
 * any case, charset UTF-8 or none; a body with no Content-Type at all is read as JSON (lenient: what
 * DPS does with it is not documented). Anything else (`text/plain`, a form, `charset=latin1`: the
 * body is decoded as UTF-8 only) is refused.
 */
export function unsupportedMediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined || contentType.trim() === '') return undefined;
  const [type = '', ...parameters] = contentType.split(';').map((part) => part.trim().toLowerCase());
  const json = type === 'application/json' || type === 'text/json' || /^application\/[^/\s]+\+json$/.test(type);
  if (!json) {
    return `Unsupported media type "${clip(contentType)}": the DPS service API takes JSON bodies (Content-Type: application/json; charset=utf-8).`;
  }
  for (const parameter of parameters) {
    const [name, value = ''] = parameter.split('=').map((part) => part.trim());
    const charset = value.replace(/^"(.*)"$/, '$1');
    if (name === 'charset' && charset !== 'utf-8' && charset !== 'utf8') {
      return `Unsupported media type "${clip(contentType)}": the DPS service API reads JSON in UTF-8 only (charset=utf-8).`;
    }
  }
  return undefined;
}

/**
 * The first place (document order) where a decoded body holds what would not be stored as sent,
 * with why, or undefined:
 * - an own `__proto__` key (`initialTwin.tags.__proto__`, `enrollments[0].__proto__`): JSON.parse
 *   makes it an own key, but the schemas' parse copies it by assignment, which sets the copy's
 *   prototype instead: the field vanished while the client was answered 200. DPS (.NET) would keep
 *   it as an ordinary key; the emulator refuses it rather than lose it silently or carry a key that
 *   changes prototypes wherever it is copied;
 * - a number past a double's range (`1e400`): JSON.parse makes it Infinity, which JSON.stringify
 *   stores as null. DPS parses JSON numbers on .NET, where such a number fails to parse; refused.
 */
export function unstorableValue(value: unknown, path = ''): { path: string; cause: string } | undefined {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return {
      path: path || '(the body)',
      cause: 'the number is beyond the range of a double (±1.8e308): it would be stored as null',
    };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = unstorableValue(item, `${path}[${index}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const at = path ? `${path}.${key}` : key;
    if (key === '__proto__') {
      return {
        path: at,
        cause: `a key named "__proto__" is not accepted (JavaScript takes it for the object's prototype: it would be dropped, not stored)`,
      };
    }
    const found = unstorableValue((value as Record<string, unknown>)[key], at);
    if (found !== undefined) return found;
  }
  return undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
