import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  splitPemCertificates,
  summarizeCertificate,
} from './certificates.js';
import { InvalidOptionError } from './errors.js';

describe('certificate tooling', () => {
  it('makes a root, an intermediate and device certificates that chain, with the registration id as CN', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const root = await createRootCa('dpskit test root', { now, days: 3650 });
    const line = await createIntermediateCa('dpskit line 1', root, { now });
    const device = await createDeviceCertificate('contoso-toaster-007', line, {
      now,
      days: 30,
      organizationalUnit: 'toasters',
    });
    const [r, i, d] = [root, line, device].map((c) => new X509Certificate(c.cert)) as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];
    expect(r.ca && i.ca).toBe(true);
    expect(d.ca).toBe(false);
    expect(r.verify(r.publicKey)).toBe(true);
    expect(i.checkIssued(r) && i.verify(r.publicKey)).toBe(true);
    expect(d.checkIssued(i) && d.verify(i.publicKey)).toBe(true);
    expect(d.verify(r.publicKey)).toBe(false);
    expect(d.subject.split('\n')).toEqual(['OU=toasters', 'CN=contoso-toaster-007']);
    expect(d.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(new Date(d.validTo).getTime() - now.getTime()).toBe(30 * 86_400_000);
    expect(d.checkPrivateKey((await import('node:crypto')).createPrivateKey(device.key))).toBe(true);
  });

  it('summarizes a certificate by subject and the thumbprints the portal shows', async () => {
    const root = await createRootCa('dpskit test root');
    const device = await createDeviceCertificate('dev-1', root);
    const summary = summarizeCertificate(device.cert + root.cert);
    const native = new X509Certificate(device.cert);
    expect(summary).toMatchObject({
      subject: 'CN=dev-1',
      issuer: 'CN=dpskit test root',
      sha1Thumbprint: native.fingerprint.replaceAll(':', ''),
      sha256Thumbprint: native.fingerprint256.replaceAll(':', ''),
    });
    expect(summary.sha256Thumbprint).toMatch(/^[0-9A-F]{64}$/);
    expect(splitPemCertificates(device.cert + root.cert)).toHaveLength(2);
  });

  it('refuses a registration id DPS would refuse, and an issuer key that is not one', async () => {
    const root = await createRootCa('dpskit test root');
    await expect(createDeviceCertificate('bad id', root)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createDeviceCertificate('ok-id', { cert: root.cert, key: 'nonsense' })).rejects.toThrow(/issuer key/);
    expect(() => summarizeCertificate('not pem')).toThrow(InvalidOptionError);
  });
});
