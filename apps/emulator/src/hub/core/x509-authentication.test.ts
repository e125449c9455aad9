import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTestCa,
  createTestDeviceCertificate,
  derChain,
  type TestCertificate,
} from '../../testing/certificates.js';
import { checkThumbprintCertificate, isThumbprint, normalizeThumbprint } from './x509-authentication.js';

const DAY = 86_400_000;
let device: TestCertificate;
let other: TestCertificate;
let expired: TestCertificate;
let sha1: string;
let sha256: string;

beforeAll(async () => {
  const ca = await createTestCa('hub test CA');
  device = await createTestDeviceCertificate('dev-1', { issuer: ca });
  other = await createTestDeviceCertificate('dev-1', { issuer: ca });
  expired = await createTestDeviceCertificate('dev-1', {
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const parsed = new X509Certificate(device.cert);
  sha1 = parsed.fingerprint.replaceAll(':', '');
  sha256 = parsed.fingerprint256.replaceAll(':', '');
});

const identity = (primaryThumbprint: string, secondaryThumbprint?: string) => ({
  deviceId: 'dev-1',
  primaryThumbprint,
  ...(secondaryThumbprint ? { secondaryThumbprint } : {}),
});

describe('X.509 thumbprint (selfSigned) authentication', () => {
  it('accepts the certificate by its SHA-256 or SHA-1 thumbprint, primary or secondary, in any case', () => {
    const chain = derChain(device.cert);
    expect(checkThumbprintCertificate(identity(sha256), chain, new Date())).toEqual({ ok: true });
    expect(checkThumbprintCertificate(identity(sha1.toLowerCase()), chain, new Date())).toEqual({ ok: true });
    expect(checkThumbprintCertificate(identity('00'.repeat(32), sha256), chain, new Date())).toEqual({ ok: true });
  });

  it('refuses no certificate, another certificate with the same CN, and an expired one, saying why', () => {
    expect(checkThumbprintCertificate(identity(sha256), [], new Date())).toMatchObject({
      ok: false,
      reason: 'certificate-missing',
    });
    const mismatch = checkThumbprintCertificate(identity(sha256), derChain(other.cert), new Date());
    expect(mismatch).toMatchObject({ ok: false, reason: 'thumbprint-mismatch' });
    if (!mismatch.ok) expect(mismatch.detail).toContain('dev-1');
    const old = new X509Certificate(expired.cert).fingerprint256;
    expect(checkThumbprintCertificate(identity(old), derChain(expired.cert), new Date())).toMatchObject({
      ok: false,
      reason: 'certificate-expired',
    });
    expect(checkThumbprintCertificate(identity(sha256), [Buffer.from('not DER')], new Date())).toMatchObject({
      ok: false,
      reason: 'certificate-invalid',
    });
  });

  it('takes thumbprints of 40 or 64 hex digits, with or without colons', () => {
    expect(isThumbprint(sha1)).toBe(true);
    expect(isThumbprint(new X509Certificate(device.cert).fingerprint256)).toBe(true);
    expect(isThumbprint('XYZ')).toBe(false);
    expect(isThumbprint('AB'.repeat(21))).toBe(false);
    expect(normalizeThumbprint('ab:cd')).toBe('ABCD');
  });
});
