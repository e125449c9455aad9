/** The DPS service (enrollment) REST routes (pure; no server). */
import type { EnrollmentKind } from '../core/enrollments/store.js';
import type { ServiceRight } from '../core/service-auth.js';

export type ServiceOperation =
  | { op: 'get' | 'put' | 'delete' | 'attestation'; kind: EnrollmentKind; id: string }
  | { op: 'query'; kind: EnrollmentKind }
  | { op: 'bulk' }
  | { op: 'get-registration' | 'delete-registration'; id: string }
  | { op: 'query-registrations'; groupId: string };

export type ServiceRoute =
  | (ServiceOperation & { kind?: EnrollmentKind; right: ServiceRight })
  | { op: 'method-not-allowed'; allowed: string }
  | { op: 'not-found' };

const COLLECTIONS: Record<string, EnrollmentKind | 'registrations'> = {
  enrollmentgroups: 'group',
  enrollments: 'individual',
  registrations: 'registrations',
};

/** Whether a path belongs to the service API: its first segment names one of its collections (any case). */
export function isServicePath(pathname: string): boolean {
  const first = pathname.split('/')[1]?.toLowerCase() ?? '';
  return first in COLLECTIONS;
}

/**
 * Matches as the service does: collection names case-insensitively (the Node SDK sends
 * `enrollmentgroups` for the attestation mechanism and `enrollmentGroups` elsewhere), ids
 * URL-decoded, an empty last segment ignored (the Node SDK posts bulk operations to `/enrollments/`).
 */
export function matchServiceRoute(method: string, pathname: string): ServiceRoute {
  const raw = pathname.split('/').slice(1);
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  const segments = raw.map(safeDecode);
  if (segments.some((s) => s === null)) return { op: 'not-found' };
  const [collectionName = '', id, action] = segments as string[];
  const collection = COLLECTIONS[collectionName.toLowerCase()];
  if (!collection || segments.length > 3) return { op: 'not-found' };
  const only = (allowed: string, route: ServiceRoute): ServiceRoute =>
    method === allowed ? route : { op: 'method-not-allowed', allowed };

  if (collection === 'registrations') {
    if (!id) return { op: 'not-found' };
    if (action !== undefined) {
      return action.toLowerCase() === 'query'
        ? only('POST', { op: 'query-registrations', groupId: id, right: 'RegistrationStatusRead' })
        : { op: 'not-found' };
    }
    if (method === 'GET') return { op: 'get-registration', id, right: 'RegistrationStatusRead' };
    if (method === 'DELETE') return { op: 'delete-registration', id, right: 'RegistrationStatusWrite' };
    return { op: 'method-not-allowed', allowed: 'GET, DELETE' };
  }

  const kind = collection;
  if (id === undefined) {
    return kind === 'individual'
      ? only('POST', { op: 'bulk', right: 'EnrollmentWrite' })
      : { op: 'method-not-allowed', allowed: 'none (bulk operations on enrollment groups are not emulated)' };
  }
  if (action !== undefined) {
    return action.toLowerCase() === 'attestationmechanism'
      ? only('POST', { op: 'attestation', kind, id, right: 'EnrollmentRead' })
      : { op: 'not-found' };
  }
  if (method === 'POST' && id.toLowerCase() === 'query') return { op: 'query', kind, right: 'EnrollmentRead' };
  if (method === 'GET') return { op: 'get', kind, id, right: 'EnrollmentRead' };
  if (method === 'PUT') return { op: 'put', kind, id, right: 'EnrollmentWrite' };
  if (method === 'DELETE') return { op: 'delete', kind, id, right: 'EnrollmentWrite' };
  return { op: 'method-not-allowed', allowed: 'GET, PUT, DELETE' };
}

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}
