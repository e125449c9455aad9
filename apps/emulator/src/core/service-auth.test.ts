import { createSasToken, generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import {
  authorizeServiceRequest,
  DEFAULT_SERVICE_POLICIES,
  resourceCovers,
  type SharedAccessPolicy,
  serviceConnectionString,
} from './service-auth.js';

const now = new Date('2026-06-01T00:00:00Z');
const inAnHour = Math.floor(now.getTime() / 1000) + 3600;
const reader: SharedAccessPolicy = {
  keyName: 'enrollmentreader',
  primaryKey: generateSymmetricKey(32),
  secondaryKey: generateSymmetricKey(32),
  rights: ['EnrollmentRead'],
};
const policies = [...DEFAULT_SERVICE_POLICIES, reader];
const owner = DEFAULT_SERVICE_POLICIES[0] as SharedAccessPolicy;

const token = (
  options: { key?: string; keyName?: string; resource?: string; expiresAt?: number; encode?: boolean } = {},
) =>
  createSasToken({
    resource: options.resource ?? 'localhost',
    key: options.key ?? owner.primaryKey,
    keyName: options.keyName ?? owner.keyName,
    expiresAt: options.expiresAt ?? inAnHour,
    encodeResource: options.encode ?? false,
  });

const check = (authorization: string | undefined, required: 'EnrollmentRead' | 'EnrollmentWrite' = 'EnrollmentWrite') =>
  authorizeServiceRequest({ authorization, hosts: ['localhost:8443', 'localhost'], policies, required, now });

describe('authorizeServiceRequest', () => {
  it('accepts the owner policy (raw or URL-encoded sr, any host case) and a secondary key', () => {
    expect(check(token())).toMatchObject({ ok: true, policy: { keyName: 'provisioningserviceowner' } });
    expect(check(token({ encode: true, resource: 'LOCALHOST' }))).toMatchObject({ ok: true });
    expect(check(token({ key: reader.secondaryKey, keyName: 'enrollmentreader' }), 'EnrollmentRead')).toMatchObject({
      ok: true,
    });
  });

  it('says why it refuses; the caller answers 401 whatever the reason', () => {
    const reason = (authorization: string | undefined, required?: 'EnrollmentRead' | 'EnrollmentWrite') => {
      const result = check(authorization, required);
      return result.ok ? 'ok' : result.reason;
    };
    expect(reason(undefined)).toBe('missing-token');
    expect(reason('Bearer abc')).toBe('malformed');
    expect(reason(token({ key: generateSymmetricKey(32) }))).toBe('signature-mismatch');
    expect(reason(token({ expiresAt: Math.floor(now.getTime() / 1000) - 1 }))).toBe('expired');
    expect(reason(token({ keyName: 'nosuch' }))).toBe('unknown-policy');
    expect(reason(token().replace(/&skn=[^&]*/, ''))).toBe('unknown-policy');
    expect(reason(token({ resource: 'other-dps.azure-devices-provisioning.net' }))).toBe('resource-mismatch');
    expect(reason(token({ key: reader.primaryKey, keyName: 'enrollmentreader' }), 'EnrollmentWrite')).toBe(
      'missing-right',
    );
  });

  it('builds the connection string the service SDK takes', () => {
    expect(serviceConnectionString('localhost', owner)).toBe(
      `HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${owner.primaryKey}`,
    );
  });
});

describe('resourceCovers', () => {
  it("is IoT Hub's prefix by segment: /a/b covers /a/b/c, not /a/bc; any case, a trailing slash ignored", () => {
    expect(resourceCovers('h.net', 'h.net')).toBe(true);
    expect(resourceCovers('h.net', 'h.net/devices/d1')).toBe(true);
    expect(resourceCovers('H.NET/devices/', 'h.net/Devices/d1')).toBe(true);
    expect(resourceCovers('h.net/messages/events', 'h.net/messages/events/$management')).toBe(true);
    expect(resourceCovers('h.net/messages/events', 'h.net/messages/devicebound')).toBe(false);
    expect(resourceCovers('h.net/messages/eventsx', 'h.net/messages/events')).toBe(false);
    expect(resourceCovers('h.net/messages/events', 'h.net/messages/eventsx')).toBe(false);
    expect(resourceCovers('h.net/devices/d1', 'h.net')).toBe(false);
    expect(resourceCovers('h.net', 'h.netx')).toBe(false);
  });
});
