import { randomBytes, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  createErrorBody,
  DpsErrorCode,
  DpsErrorMessage,
  deriveDeviceKey,
  parseDeviceRegistrationJson,
  registrationResource,
  verifySasToken,
} from '@dpskit/contracts';
import type { TestPki } from './tls.js';

/**
 * A deliberately small DPS device API over HTTPS for device-sim's own tests: enough of register and
 * operation-status polling (protocol notes §2) to drive the real SDK through an assigned, a failed
 * and a disabled registration. The real emulator lives in apps/emulator and is exercised by e2e.
 */
export interface HttpsDpsOptions {
  pki: TestPki;
  idScope: string;
  groupKey: string;
  /** Decides each device's final answer. */
  decide: (registrationId: string, payload: unknown) => Decision;
  /** Seconds the device is told to wait before polling (`retry-after`). */
  retryAfter?: string;
}

export type Decision =
  | { kind: 'assigned'; hub: string; payload?: Record<string, unknown> }
  | { kind: 'failed'; errorCode: number; errorMessage: string }
  | { kind: 'disabled' }
  /** A 200 whose body has no `status`: the stock SDK would crash on it. */
  | { kind: 'no-status' }
  /** The register request is answered 503 (ServiceUnavailable): a transient failure. */
  | { kind: 'unavailable' };

export interface ReceivedRegistration {
  registrationId: string;
  payload: unknown;
  authorization: string | undefined;
  userAgent: string | undefined;
}

export interface HttpsDps {
  port: number;
  host: string;
  registrations: ReceivedRegistration[];
  polls: number;
  close(): Promise<void>;
}

interface Operation {
  registrationId: string;
  decision: Decision;
  created: string;
}

export async function startHttpsDps(options: HttpsDpsOptions): Promise<HttpsDps> {
  const operations = new Map<string, Operation>();
  const state: HttpsDps = {
    port: 0,
    host: '',
    registrations: [],
    polls: 0,
    close: async () => {},
  };
  const server = https.createServer({ key: options.pki.serverKeyPem, cert: options.pki.serverCertPem }, (req, res) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://localhost');
      const m = /^\/([^/]+)\/registrations\/([^/]+)\/(register|operations\/([^/]+))$/.exec(url.pathname);
      if (!m || m[1] !== options.idScope) {
        send(404, createErrorBody(DpsErrorCode.NotFound, 'Not found'));
        return;
      }
      const registrationId = decodeURIComponent(m[2]!);
      try {
        verifySasToken(req.headers.authorization ?? '', {
          keys: [deriveDeviceKey(options.groupKey, registrationId)],
          expectedResource: registrationResource(options.idScope, registrationId),
        });
      } catch {
        send(401, createErrorBody(DpsErrorCode.Unauthorized, DpsErrorMessage.unauthorized));
        return;
      }
      if (req.method === 'PUT' && m[3] === 'register') {
        const body = parseDeviceRegistrationJson(text);
        if (!body.ok) {
          send(400, createErrorBody(DpsErrorCode.InvalidRequestBody, body.error.message));
          return;
        }
        state.registrations.push({
          registrationId,
          payload: body.value.payload,
          authorization: req.headers.authorization,
          userAgent: req.headers['user-agent'],
        });
        const decision = options.decide(registrationId, body.value.payload);
        if (decision.kind === 'unavailable') {
          send(503, createErrorBody(503000, 'Service unavailable'));
          return;
        }
        const operationId = `4.${randomBytes(8).toString('hex')}.${randomUUID()}`;
        operations.set(operationId, { registrationId, decision, created: new Date().toISOString() });
        send(202, { operationId, status: 'assigning' }, { 'retry-after': options.retryAfter ?? '1' });
        return;
      }
      const operationId = m[4];
      const op = operationId === undefined ? undefined : operations.get(operationId);
      if (req.method !== 'GET' || !op || op.registrationId !== registrationId) {
        send(404, createErrorBody(DpsErrorCode.OperationNotFound, 'Operation not found'));
        return;
      }
      state.polls += 1;
      const now = new Date().toISOString();
      const common = { registrationId, createdDateTimeUtc: op.created, lastUpdatedDateTimeUtc: now, etag: 'IjEi' };
      const decision = op.decision;
      switch (decision.kind) {
        case 'assigned':
          send(200, {
            operationId,
            status: 'assigned',
            registrationState: {
              ...common,
              assignedHub: decision.hub,
              deviceId: registrationId,
              status: 'assigned',
              substatus: 'initialAssignment',
              ...(decision.payload ? { payload: decision.payload } : {}),
            },
          });
          return;
        case 'failed':
          send(200, {
            operationId,
            status: 'failed',
            registrationState: {
              ...common,
              status: 'failed',
              errorCode: decision.errorCode,
              errorMessage: decision.errorMessage,
            },
          });
          return;
        case 'disabled':
          send(200, { operationId, status: 'disabled', registrationState: { ...common, status: 'disabled' } });
          return;
        case 'no-status':
        case 'unavailable':
          send(200, { operationId });
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.host = `localhost:${state.port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
