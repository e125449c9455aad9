import { DpsErrorCode } from '@dpskit/contracts';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, createTestDeviceCertificate, type TestCertificate } from '../../testing/certificates.js';
import { certificateUses, findCertificateConflict } from './certificate-conflicts.js';
import { EnrollmentService } from './service.js';
import { MemoryEnrollmentStore, pageOf } from './store.js';

let root: TestCertificate;
let line: TestCertificate;
let device: TestCertificate;
let other: TestCertificate;

beforeAll(async () => {
  root = await createTestCa('Conflicts root');
  line = await createTestCa('Conflicts line', { issuer: root });
  device = await createTestDeviceCertificate('conflict-device', { issuer: line });
  other = await createTestDeviceCertificate('conflict-other', { issuer: line });
});

const signedBy = (cert: string, secondary?: string) => ({
  type: 'x509',
  x509: {
    signingCertificates: {
      primary: { certificate: cert },
      ...(secondary ? { secondary: { certificate: secondary } } : {}),
    },
  },
});
const clientCert = (cert: string) => ({
  type: 'x509',
  x509: { clientCertificates: { primary: { certificate: cert } } },
});

function service() {
  return new EnrollmentService({
    store: new MemoryEnrollmentStore(),
    registrations: { get: () => undefined, delete: () => false, listByGroup: () => pageOf([], undefined, () => '') },
    linkedHubs: [],
    caCertificates: new Map([['contoso-root', root.cert]]),
  });
}

describe('certificate conflicts between enrollments', () => {
  it('lists the certificates that select devices, with their SHA-256 thumbprints', () => {
    const uses = certificateUses('group', 'g', signedBy(line.cert, root.cert));
    expect(uses.map((u) => u.field)).toEqual(['signingCertificates.primary', 'signingCertificates.secondary']);
    expect(uses[0]?.sha256Thumbprint).toMatch(/^[0-9A-F]{64}$/);
    const referenced = certificateUses(
      'group',
      'g',
      { type: 'x509', x509: { caReferences: { primary: 'Contoso-Root' } } },
      new Map([['contoso-root', root.cert]]),
    );
    expect(referenced).toEqual([
      expect.objectContaining({ field: 'caReferences.primary', sha256Thumbprint: uses[1]?.sha256Thumbprint }),
    ]);
    expect(certificateUses('group', 'g', { type: 'symmetricKey' })).toEqual([]);
  });

  it('finds a certificate another enrollment of the same kind uses, never the enrollment itself', () => {
    const mine = certificateUses('group', 'g2', signedBy(line.cert));
    const theirs = certificateUses('group', 'g1', signedBy(root.cert, line.cert));
    expect(findCertificateConflict(mine, theirs)).toMatchObject({
      use: { field: 'signingCertificates.primary' },
      other: { id: 'g1', field: 'signingCertificates.secondary' },
    });
    expect(findCertificateConflict(mine, certificateUses('group', 'G2', signedBy(line.cert)))).toBeUndefined();
    // An individual enrollment with a CA's certificate is not a group's conflict.
    const individual = certificateUses('individual', 'd', clientCert(line.cert));
    expect(findCertificateConflict(mine, individual)).toBeUndefined();
  });

  it('refuses through the service a client certificate in two individual enrollments, and a group certificate twice (409202)', () => {
    const svc = service();
    expect(
      svc.put('individual', 'conflict-device', {
        registrationId: 'conflict-device',
        attestation: clientCert(device.cert),
      }).ok,
    ).toBe(true);
    const twice = svc.put('individual', 'conflict-device-2', {
      registrationId: 'conflict-device-2',
      attestation: clientCert(device.cert),
    });
    expect(twice).toMatchObject({
      ok: false,
      errorCode: DpsErrorCode.CertificateConflict,
      message: expect.stringMatching(
        /^Invalid attestation\.x509\.clientCertificates\.primary: the certificate \(SHA-256 [0-9A-F]{64}\) is already the clientCertificates\.primary of individual enrollment "conflict-device"/,
      ),
    });
    // Replacing the enrollment that has the certificate is no conflict; another certificate is fine.
    expect(
      svc.put('individual', 'conflict-device', {
        registrationId: 'conflict-device',
        attestation: clientCert(device.cert),
        provisioningStatus: 'disabled',
      }).ok,
    ).toBe(true);
    expect(
      svc.put('individual', 'conflict-other', { registrationId: 'conflict-other', attestation: clientCert(other.cert) })
        .ok,
    ).toBe(true);

    expect(svc.put('group', 'line', { enrollmentGroupId: 'line', attestation: signedBy(line.cert) }).ok).toBe(true);
    expect(
      svc.put('group', 'root', {
        enrollmentGroupId: 'root',
        attestation: { type: 'x509', x509: { caReferences: { primary: 'contoso-root' } } },
      }).ok,
    ).toBe(true);
    expect(
      svc.put('group', 'line-again', { enrollmentGroupId: 'line-again', attestation: signedBy(line.cert) }),
    ).toMatchObject({
      ok: false,
      errorCode: 409202,
      message: expect.stringContaining('is already the signingCertificates.primary of enrollment group "line"'),
    });
    // The root's certificate given directly is the certificate "root" references.
    expect(
      svc.put('group', 'root-direct', { enrollmentGroupId: 'root-direct', attestation: signedBy(root.cert) }),
    ).toMatchObject({
      ok: false,
      message: expect.stringContaining('is already the caReferences.primary of enrollment group "root"'),
    });
    // Once the group is deleted its certificate is free again.
    expect(svc.delete('group', 'line').ok).toBe(true);
    expect(
      svc.put('group', 'line-again', { enrollmentGroupId: 'line-again', attestation: signedBy(line.cert) }).ok,
    ).toBe(true);
  });

  it('reports a conflict per item in a bulk operation', () => {
    const svc = service();
    const result = svc.bulk({
      mode: 'create',
      enrollments: [
        { registrationId: 'conflict-device', attestation: clientCert(device.cert) },
        { registrationId: 'conflict-device-b', attestation: clientCert(device.cert) },
      ],
    });
    expect(result).toMatchObject({
      ok: true,
      value: { isSuccessful: false, errors: [{ registrationId: 'conflict-device-b', errorCode: 409202 }] },
    });
  });
});
