import https from 'node:https';
import { createDeviceSasToken, createSasToken } from '@dpskit/contracts';
import type { Emulator } from '../emulator.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
  /** The client port of the connection the request went on (which connection a keep-alive agent used). */
  port: number | undefined;
  /** With `expectContinue`: whether the server said `100 Continue` (and so the body was sent). */
  continued?: boolean;
}

const hourFromNow = () => Math.floor(Date.now() / 1000) + 3600;

/** A DPS service API token of the emulator's owner policy, for `localhost`. */
export const serviceToken = (emulator: Emulator) =>
  createSasToken({
    resource: 'localhost',
    key: emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
    keyName: 'provisioningserviceowner',
    expiresAt: hourFromNow(),
  });

/** A registry token of the hub's owner policy (the well-known key). */
export const registryToken = (hub: string) =>
  createSasToken({ resource: hub, key: WELL_KNOWN_HUB_KEY, keyName: HUB_OWNER_POLICY_NAME, expiresAt: hourFromNow() });

/** A hub device's own token (`sr={hub}/devices/{id}`, no `skn`), valid for an hour. */
export const hubDeviceToken = (hub: string, deviceId: string, key: string) =>
  createDeviceSasToken({ hubHostName: hub, deviceId, key });

/**
 * A plain node:https request to the emulator's HTTPS listener (for what the SDK never sends). With
 * `withholdBody` only the headers are sent (a `Content-Length` in `headers` announcing a body that
 * never comes): only an answer given before the body is read arrives before the idle timeout.
 * Without `agent`, on a connection of its own; with one (keep-alive), on the agent's connections,
 * one pool whatever the Host header (which would otherwise name the TLS server). With
 * `expectContinue`, it sends `Expect: 100-continue` and its body only once the server says
 * `100 Continue` (as curl does with a large body).
 */
export function rawRequest(
  emulator: Emulator,
  options: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    withholdBody?: boolean;
    agent?: https.Agent;
    expectContinue?: boolean;
  },
): Promise<RawResponse> {
  const endpoint = emulator.endpoints.https;
  if (!endpoint) throw new Error('the emulator runs without HTTPS');
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: 'localhost',
        port: endpoint.port,
        method: options.method,
        path: options.path,
        ca: emulator.caCertPem,
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          // As the SDK does (it even sends `{}` with GET): a length, not a chunked body.
          'Content-Length': Buffer.byteLength(options.body ?? ''),
          ...(options.expectContinue ? { Expect: '100-continue' } : {}),
          ...options.headers,
        },
        ...(options.agent ? { agent: options.agent, servername: 'localhost' } : { agent: false }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text,
            json,
            port,
            ...(options.expectContinue ? { continued } : {}),
          });
        });
      },
    );
    let port: number | undefined;
    request.on('socket', (socket) => {
      port = socket.localPort;
      socket.once('secureConnect', () => (port = socket.localPort));
    });
    request.on('error', reject);
    let continued = false;
    if (options.expectContinue) {
      request.on('continue', () => {
        continued = true;
        request.end(options.body);
      });
      request.flushHeaders();
    } else if (options.withholdBody) request.flushHeaders();
    else request.end(options.body);
  });
}
