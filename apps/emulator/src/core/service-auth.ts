import { parseSasToken, SasTokenError, verifySasToken } from '@dpskit/contracts';

/** The permissions a DPS shared access policy grants (azure-docs how-to-control-access). */
export const SERVICE_RIGHTS = [
  'ServiceConfig',
  'EnrollmentRead',
  'EnrollmentWrite',
  'RegistrationStatusRead',
  'RegistrationStatusWrite',
] as const;
export type ServiceRight = (typeof SERVICE_RIGHTS)[number];

/** A shared access policy; `R` is the service's rights (DPS's by default, the hub's for the hub). */
export interface SharedAccessPolicy<R extends string = ServiceRight> {
  keyName: string;
  primaryKey: string;
  secondaryKey?: string;
  rights: readonly R[];
}

/** The name of the policy DPS creates with every instance, holding every right. */
export const OWNER_POLICY_NAME = 'provisioningserviceowner';

/**
 * The emulator's well-known development key for `provisioningserviceowner`, public on purpose (as
 * Azurite's `devstoreaccount1` key is) so that test code can hard-code the connection string. It
 * protects nothing: configure your own policies (`servicePolicies`) when the emulator is reachable
 * by others.
 */
export const WELL_KNOWN_SERVICE_KEY = 'xHGZEpihJzjogt7rNRfrtwz6XLpBiq363VC2bcDVj8A=';

export const DEFAULT_SERVICE_POLICIES: readonly SharedAccessPolicy[] = [
  { keyName: OWNER_POLICY_NAME, primaryKey: WELL_KNOWN_SERVICE_KEY, rights: SERVICE_RIGHTS },
];

export type ServiceAuthFailure =
  | 'missing-token'
  | 'malformed'
  | 'expired'
  | 'unknown-policy'
  | 'resource-mismatch'
  | 'signature-mismatch'
  | 'missing-right';

export type ServiceAuthResult<R extends string = ServiceRight> =
  /** `resource`: the token's `sr`, URL-decoded, without scheme or trailing slash, lower case. */
  | { ok: true; policy: SharedAccessPolicy<R>; resource: string; expiresAt: number }
  | { ok: false; reason: ServiceAuthFailure; detail: string };

export interface ServiceAuthInput<R extends string = ServiceRight> {
  /** The `Authorization` header. */
  authorization: string | undefined;
  /** The host names the token's `sr` may name (the request's `Host` header, with and without port). */
  hosts: readonly string[];
  /** Instead of `hosts`: whether the token's `sr` (decoded, without scheme) grants what is asked. */
  resourceMatches?: (resource: string) => boolean;
  policies: readonly SharedAccessPolicy<R>[];
  /** The right the operation needs, or the rights of which any one will do. */
  required: R | readonly R[];
  now: Date;
}

/**
 * Checks a service API request's `SharedAccessSignature sr={host}&sig=…&se=…&skn={policy}` as DPS
 * does: the policy named by `skn`, the signature by its primary or secondary key (constant-time),
 * expiry, `sr` naming this service's host, and the right the operation needs. The details are for
 * the log; the client only ever gets 401 "Unauthorized".
 */
export function authorizeServiceRequest<R extends string = ServiceRight>(
  input: ServiceAuthInput<R>,
): ServiceAuthResult<R> {
  const fail = (reason: ServiceAuthFailure, detail: string): ServiceAuthResult<R> => ({ ok: false, reason, detail });
  if (!input.authorization) return fail('missing-token', 'no Authorization header');
  let keyName: string | undefined;
  let resource: string;
  try {
    const parsed = parseSasToken(input.authorization);
    keyName = parsed.keyName;
    resource = parsed.resource;
  } catch (err) {
    if (err instanceof SasTokenError) return fail('malformed', err.message);
    throw err;
  }
  if (!keyName) return fail('unknown-policy', 'the token has no skn (shared access policy name)');
  const policy = input.policies.find((p) => p.keyName.toLowerCase() === keyName.toLowerCase());
  if (!policy) return fail('unknown-policy', `no shared access policy is named "${keyName}"`);
  const host = resource
    .replace(/^https?:\/\//i, '')
    .replace(/\/+$/, '')
    .toLowerCase();
  const matches = input.resourceMatches
    ? input.resourceMatches(host)
    : input.hosts.some((h) => h.toLowerCase() === host);
  if (!matches) {
    return fail('resource-mismatch', `the token is for "${resource}", not this service (${input.hosts.join(' or ')})`);
  }
  let expiresAt: number;
  try {
    ({ expiresAt } = verifySasToken(input.authorization, {
      keys: policy.secondaryKey ? [policy.primaryKey, policy.secondaryKey] : [policy.primaryKey],
      expectedResource: resource,
      now: input.now,
    }));
  } catch (err) {
    if (err instanceof SasTokenError) {
      return fail(
        err.reason === 'expired' ? 'expired' : err.reason === 'malformed' ? 'malformed' : 'signature-mismatch',
        `${err.message} (policy "${policy.keyName}")`,
      );
    }
    throw err;
  }
  const required: readonly R[] = typeof input.required === 'string' ? [input.required] : input.required;
  if (!required.some((right) => policy.rights.includes(right))) {
    return fail('missing-right', `policy "${policy.keyName}" lacks the ${required.join(' or ')} right`);
  }
  return { ok: true, policy, resource: host, expiresAt };
}

/**
 * Whether a token's resource `scope` (its `sr`, decoded) grants `target`: IoT Hub's rule, "URI
 * prefix (by segment) of the endpoints that can be accessed with this token … `/a/b` is a prefix for
 * `/a/b/c` but not for `/a/bc`" (azure-docs iot-hub-dev-guide-sas, Security token structure), which
 * Event Hubs applies to its audiences too (a token for the namespace, the entity or anything above
 * the audience's path). Compared without case, scheme (`sb://`, `amqps://`) and trailing slashes.
 */
export function resourceCovers(scope: string, target: string): boolean {
  const normal = (uri: string) =>
    uri
      .replace(/^[a-z]+:\/\//i, '')
      .replace(/\/+$/, '')
      .toLowerCase();
  const granted = normal(scope);
  const wanted = normal(target);
  return granted.length > 0 && (wanted === granted || wanted.startsWith(`${granted}/`));
}

/** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`, what `ProvisioningServiceClient.fromConnectionString` takes. */
export function serviceConnectionString(hostName: string, policy: SharedAccessPolicy<string>): string {
  return `HostName=${hostName};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
}
