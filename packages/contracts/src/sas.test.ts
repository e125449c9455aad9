import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveDeviceKey } from './keys.js';
import {
  createRegistrationSasToken,
  createSasToken,
  parseSasToken,
  registrationResource,
  SasTokenError,
  verifySasToken,
} from './sas.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const DEVICE_KEY = deriveDeviceKey(GROUP_KEY, 'contoso-toaster-007');
const RESOURCE = registrationResource('0ne00000A0A', 'contoso-toaster-007');
const BEFORE_EXPIRY = new Date('2025-12-31T23:00:00Z');

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SasTokenError) return err.reason;
    throw err;
  }
  return 'ok';
}

describe('createSasToken', () => {
  // Both tokens were produced by the SDKs themselves (see shared/notes/dps-device-protocol.md §4.4).
  it('matches the Node SDK token byte for byte (raw sr)', () => {
    expect(createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 })).toBe(
      'SharedAccessSignature sr=0ne00000A0A/registrations/contoso-toaster-007&sig=NOVegwZ9lUAE1uBZmzdQV5jJFObbT3lPjhHyKudxTTo%3D&skn=registration&se=1767225600',
    );
  });

  it('signs the encoded sr when asked, as the C and Python SDKs do', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600, encodeResource: true });
    expect(token).toContain('sr=0ne00000A0A%2Fregistrations%2Fcontoso-toaster-007&');
    expect(token).toContain('sig=suJ6n9IYmbyydzY8qhZgpIh8tOOfBugQHSiYTBwuMQo%3D');
  });

  it('creates registration tokens valid for an hour by default', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const token = createRegistrationSasToken({
      idScope: '0ne00000A0A',
      registrationId: 'contoso-toaster-007',
      key: DEVICE_KEY,
      now,
    });
    expect(parseSasToken(token).expiresAt).toBe(now.getTime() / 1000 + 3600);
  });
});

describe('verifySasToken round trips', () => {
  const options = { keys: [DEVICE_KEY], expectedResource: RESOURCE, now: BEFORE_EXPIRY };

  it('accepts a raw-sr token', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(verifySasToken(token, options).keyIndex).toBe(0);
  });

  it('accepts an encoded-sr token, in any field order', () => {
    const token =
      'SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fcontoso-toaster-007&sig=suJ6n9IYmbyydzY8qhZgpIh8tOOfBugQHSiYTBwuMQo%3D&se=1767225600&skn=registration';
    expect(verifySasToken(token, options).resource).toBe(RESOURCE);
  });

  it('accepts lower-case percent-encoding of sr (C SDK), signed as it appears', () => {
    const sr = '0ne00000A0A%2fregistrations%2fcontoso-toaster-007';
    const sig = createHmac('sha256', Buffer.from(DEVICE_KEY, 'base64')).update(`${sr}\n1767225600`).digest('base64');
    const token = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=1767225600&skn=registration`;
    expect(verifySasToken(token, options).rawResource).toBe(sr);
  });

  it('accepts the secondary key and says which key matched', () => {
    const secondary = deriveDeviceKey('c2Vjb25kYXJ5LWdyb3VwLWtleS1mb3ItdGVzdHM=', 'contoso-toaster-007');
    const token = createSasToken({ resource: RESOURCE, key: secondary, expiresAt: 1767225600 });
    expect(verifySasToken(token, { ...options, keys: [DEVICE_KEY, secondary] }).keyIndex).toBe(1);
  });

  it('compares the resource case-insensitively (registration ids are)', () => {
    const token = createSasToken({ resource: RESOURCE.toUpperCase(), key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(verifySasToken(token, options).resource).toBe(RESOURCE.toUpperCase());
  });

  it('rejects a tampered signature', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    const tampered = token.replace('sig=N', 'sig=M');
    expect(reason(() => verifySasToken(tampered, options))).toBe('signature-mismatch');
  });

  it('rejects a token whose expiry was moved after signing', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token.replace('se=1767225600', 'se=1767225601'), options))).toBe(
      'signature-mismatch',
    );
  });

  it('rejects a token signed with another key', () => {
    const token = createSasToken({ resource: RESOURCE, key: GROUP_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, options))).toBe('signature-mismatch');
  });

  it('rejects an expired token', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, { ...options, now: new Date('2026-01-01T00:00:01Z') }))).toBe('expired');
  });

  it('rejects a token for another registration', () => {
    const other = registrationResource('0ne00000A0A', 'contoso-heatpump-088');
    const token = createSasToken({ resource: other, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, options))).toBe('resource-mismatch');
  });

  it('rejects a token for another id scope', () => {
    const token = createSasToken({
      resource: registrationResource('0ne00000B0B', 'contoso-toaster-007'),
      key: DEVICE_KEY,
      expiresAt: 1767225600,
    });
    expect(reason(() => verifySasToken(token, options))).toBe('resource-mismatch');
  });
});

describe('parseSasToken', () => {
  it.each([
    ['', 'does not start with'],
    ['Bearer abc', 'does not start with'],
    ['SharedAccessSignature sig=abc&se=1', 'no sr'],
    ['SharedAccessSignature sr=a&se=1', 'no sig'],
    ['SharedAccessSignature sr=a&sig=b', 'no se'],
    ['SharedAccessSignature sr=a&sig=b&se=soon', 'not a number'],
    ['SharedAccessSignature sr=a&sig=b&se=1&se=2', 'appears twice'],
    ['SharedAccessSignature sr=%E0%A4%A&sig=b&se=1', 'not valid URL encoding'],
    ['SharedAccessSignature junk', 'not name=value'],
  ])('rejects %j as malformed (%s)', (token, message) => {
    expect(() => parseSasToken(token)).toThrowError(expect.objectContaining({ reason: 'malformed' }));
    expect(() => parseSasToken(token)).toThrow(message);
  });
});
