/** The DPS device REST routes (pure; no server). */

export type DeviceRoute =
  | { kind: 'register'; idScope: string; registrationId: string }
  | { kind: 'operation-status'; idScope: string; registrationId: string; operationId: string }
  | { kind: 'status-lookup'; idScope: string; registrationId: string }
  | { kind: 'method-not-allowed'; allowed: string }
  | { kind: 'not-found' };

/**
 * `PUT /{idScope}/registrations/{id}/register`, `GET /{idScope}/registrations/{id}/operations/{opId}`
 * and `POST /{idScope}/registrations/{id}`. Path segments are URL-decoded.
 */
export function matchRoute(method: string, pathname: string): DeviceRoute {
  const segments = pathname.split('/').slice(1).map(safeDecode);
  if (segments.some((s) => s === null) || segments[1] !== 'registrations') return { kind: 'not-found' };
  const [idScope, , registrationId, action, operationId] = segments as string[];
  if (!idScope || !registrationId) return { kind: 'not-found' };
  const route = (allowed: string, matched: DeviceRoute): DeviceRoute =>
    method === allowed ? matched : { kind: 'method-not-allowed', allowed };
  if (segments.length === 3) return route('POST', { kind: 'status-lookup', idScope, registrationId });
  if (segments.length === 4 && action === 'register')
    return route('PUT', { kind: 'register', idScope, registrationId });
  if (segments.length === 5 && action === 'operations' && operationId) {
    return route('GET', { kind: 'operation-status', idScope, registrationId, operationId });
  }
  return { kind: 'not-found' };
}

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * Whether an `api-version` is shaped like one of DPS's: a date, perhaps `-preview` (`2019-03-31`,
 * `2021-10-01`, `2025-07-01-preview`). DPS refuses versions it does not know (`400004 "Unsupported
 * API version 2019-04-15."`, Azure/iotedge#4112); the emulator serves every dated one the same
 * way, so it refuses only what is no version at all. Matched whole, so nothing else rides along
 * into the `Location` header or a version comparison.
 */
export function isDatedApiVersion(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}(-preview)?$/.test(value);
}
