import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCertificates, subjectAltNames } from './certificates.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-tls-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('ensureCertificates', () => {
  it('creates a CA and a server certificate for localhost, 127.0.0.1, ::1 and configured names', async () => {
    const dir = tempDir();
    const tls = await ensureCertificates({ dir, names: ['dps.example.test'] });
    expect(tls.action).toBe('generated');
    expect(tls.caCertPath).toBe(join(dir, 'ca.pem'));
    const ca = new X509Certificate(tls.caCertPem);
    const server = new X509Certificate(tls.serverCertPem);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect([...subjectAltNames(server)].sort()).toEqual([
      '0:0:0:0:0:0:0:1',
      '127.0.0.1',
      'dps.example.test',
      'localhost',
    ]);
  });

  it('reuses the files on the next start, and re-issues only the server certificate for new names', async () => {
    const dir = tempDir();
    const first = await ensureCertificates({ dir });
    const second = await ensureCertificates({ dir });
    expect(second.action).toBe('reused');
    expect(second.serverCertPem).toBe(first.serverCertPem);

    const third = await ensureCertificates({ dir, names: ['emulator.internal'] });
    expect(third.action).toBe('regenerated-server');
    expect(third.reason).toContain('emulator.internal');
    expect(third.caCertPem).toBe(first.caCertPem);
    expect(subjectAltNames(new X509Certificate(third.serverCertPem)).has('emulator.internal')).toBe(true);
  });

  it('re-issues an expiring server certificate and replaces an unusable CA', async () => {
    const dir = tempDir();
    const first = await ensureCertificates({ dir });
    const later = new Date(Date.now() + 900 * 86_400_000);
    const renewed = await ensureCertificates({ dir, now: later });
    expect(renewed.action).toBe('regenerated-server');
    expect(renewed.reason).toMatch(/server certificate expires/);
    expect(renewed.caCertPem).toBe(first.caCertPem);

    writeFileSync(join(dir, 'ca.key.pem'), 'garbage');
    const replaced = await ensureCertificates({ dir });
    expect(replaced.action).toBe('regenerated-all');
    expect(replaced.reason).toMatch(/CA files cannot be read/);
    expect(replaced.caCertPem).not.toBe(first.caCertPem);
  });
});
