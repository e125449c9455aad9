import { X509Certificate } from 'node:crypto';
import { createRegistrationSasToken, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTestCa,
  createTestDeviceCertificate,
  derChain,
  pemChain,
  type TestCertificate,
} from '../testing/certificates.js';
import { groupEnrollment, individualEnrollment, x509Enrollment } from '../testing/enrollments.js';
import { attest } from './attestation.js';
import { enrollmentSet } from './model.js';

const SCOPE = '0ne00000A0A';
const DAY = 86_400_000;
const now = new Date();

let root: TestCertificate;
let line: TestCertificate;
let otherRoot: TestCertificate;
let expiredLine: TestCertificate;
let solo: TestCertificate;
let soloSecondary: TestCertificate;
let set: ReturnType<typeof enrollmentSet>;
const groupKeys = { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };

beforeAll(async () => {
  root = await createTestCa('Contoso root');
  line = await createTestCa('Contoso line 1', { issuer: root });
  otherRoot = await createTestCa('Fabrikam root');
  expiredLine = await createTestCa('Contoso old line', {
    issuer: root,
    notBefore: new Date(now.getTime() - 30 * DAY),
    notAfter: new Date(now.getTime() - DAY),
  });
  solo = await createTestDeviceCertificate('solo-x509');
  soloSecondary = await createTestDeviceCertificate('solo-x509');
  set = enrollmentSet([
    x509Enrollment('group', 'root-group', { signingCertificates: { primary: { certificate: root.cert } } }),
    x509Enrollment('group', 'line-group', {
      signingCertificates: { primary: { certificate: otherRoot.cert }, secondary: { certificate: line.cert } },
    }),
    x509Enrollment('individual', 'solo-x509', {
      clientCertificates: { primary: { certificate: solo.cert }, secondary: { certificate: soloSecondary.cert } },
    }),
    individualEnrollment('keyed-device', groupKeys),
    groupEnrollment('keyed-group', groupKeys),
  ]);
});

const run = (registrationId: string, pem: string | undefined, token?: string) =>
  attest(
    {
      idScope: SCOPE,
      requestedIdScope: SCOPE,
      registrationId,
      token,
      ...(pem ? { clientCertificates: derChain(pem) } : {}),
      now,
    },
    set,
  );

describe('X.509 attestation', () => {
  it('prefers the group of the intermediate over the root group when the device sends its chain', async () => {
    const device = await createTestDeviceCertificate('toaster-1', { issuer: line });
    const result = run('toaster-1', pemChain(device, line));
    expect(result).toMatchObject({ ok: true, keyUsed: 'secondary', enrollment: { id: 'line-group' } });
    if (!result.ok) return;
    const x509 = result.x509;
    expect(x509?.clientCertificate).toBe(new X509Certificate(device.cert).raw.toString('base64'));
    expect(x509?.certificateInfo?.subjectName).toBe('CN=toaster-1');
    expect(x509?.certificateInfo?.issuerName).toBe('CN=Contoso line 1');
    expect(x509?.certificateChain).toEqual([new X509Certificate(line.cert).raw.toString('base64')]);
    expect(x509?.signingCertificateInfo?.subjectName).toBe('CN=Contoso line 1');
  });

  it('uses the root group for a device the root signed, and when the chain includes the root itself', async () => {
    const direct = await createTestDeviceCertificate('direct-1', { issuer: root });
    expect(run('direct-1', pemChain(direct))).toMatchObject({ ok: true, enrollment: { id: 'root-group' } });
    expect(run('direct-1', pemChain(direct, root))).toMatchObject({ ok: true, enrollment: { id: 'root-group' } });
  });

  it('matches an individual enrollment by its primary or secondary certificate', () => {
    expect(run('solo-x509', pemChain(solo))).toMatchObject({
      ok: true,
      keyUsed: 'primary',
      enrollment: { kind: 'individual', id: 'solo-x509' },
      x509: { certificateInfo: { subjectName: 'CN=solo-x509' } },
    });
    expect(run('SOLO-x509', pemChain(soloSecondary))).toMatchObject({ ok: true, keyUsed: 'secondary' });
  });

  it('refuses another certificate for an individual enrollment, even one a group would take', async () => {
    const groupSigned = await createTestDeviceCertificate('solo-x509', { issuer: line });
    const result = run('solo-x509', pemChain(groupSigned, line));
    expect(result).toMatchObject({ ok: false, reason: 'certificate-mismatch' });
    if (!result.ok) expect(result.detail).toContain('individual enrollment "solo-x509"');
  });

  it('refuses a registration id that is not the certificate CN', async () => {
    const device = await createTestDeviceCertificate('toaster-2', { issuer: line });
    const result = run('toaster-3', pemChain(device, line));
    expect(result).toMatchObject({ ok: false, reason: 'cn-mismatch' });
    if (!result.ok) expect(result.detail).toContain('"toaster-2"');
  });

  it('refuses an expired device certificate and one not yet valid', async () => {
    const expired = await createTestDeviceCertificate('toaster-4', {
      issuer: line,
      notBefore: new Date(now.getTime() - 10 * DAY),
      notAfter: new Date(now.getTime() - DAY),
    });
    expect(run('toaster-4', pemChain(expired, line))).toMatchObject({ ok: false, reason: 'certificate-expired' });
    const future = await createTestDeviceCertificate('toaster-5', {
      issuer: line,
      notBefore: new Date(now.getTime() + DAY),
      notAfter: new Date(now.getTime() + 10 * DAY),
    });
    const result = run('toaster-5', pemChain(future, line));
    expect(result).toMatchObject({ ok: false, reason: 'certificate-expired' });
    if (!result.ok) expect(result.detail).toContain('not valid before');
  });

  it('refuses a chain through an expired intermediate', async () => {
    const device = await createTestDeviceCertificate('toaster-6', { issuer: expiredLine });
    const result = run('toaster-6', pemChain(device, expiredLine));
    expect(result).toMatchObject({ ok: false, reason: 'certificate-expired' });
    if (!result.ok) expect(result.detail).toContain('Contoso old line');
  });

  it('refuses a certificate signed by a CA no enrollment trusts', async () => {
    const stranger = await createTestCa('Stranger CA');
    const device = await createTestDeviceCertificate('toaster-7', { issuer: stranger });
    const result = run('toaster-7', pemChain(device, stranger));
    expect(result).toMatchObject({ ok: false, reason: 'no-matching-enrollment' });
    if (!result.ok) expect(result.detail).toContain('CN=Stranger CA');
  });

  it('needs the intermediate in the chain to reach a root group (DPS requires the device to send it)', async () => {
    const onlyRoot = enrollmentSet([
      x509Enrollment('group', 'root-only', { signingCertificates: { primary: { certificate: root.cert } } }),
    ]);
    const device = await createTestDeviceCertificate('toaster-8', { issuer: line });
    const input = { idScope: SCOPE, requestedIdScope: SCOPE, registrationId: 'toaster-8', token: undefined, now };
    expect(attest({ ...input, clientCertificates: derChain(pemChain(device)) }, onlyRoot)).toMatchObject({
      ok: false,
      reason: 'no-matching-enrollment',
    });
    expect(attest({ ...input, clientCertificates: derChain(pemChain(device, line)) }, onlyRoot)).toMatchObject({
      ok: true,
      enrollment: { id: 'root-only' },
    });
  });

  it('resolves CA references through the instance certificates', async () => {
    const referenced = enrollmentSet([
      x509Enrollment(
        'group',
        'by-reference',
        { caReferences: { primary: 'contoso-root' } },
        {},
        new Map([['contoso-root', root.cert]]),
      ),
      x509Enrollment('group', 'dangling', { caReferences: { primary: 'nowhere' } }),
    ]);
    const device = await createTestDeviceCertificate('toaster-9', { issuer: root });
    const result = attest(
      {
        idScope: SCOPE,
        requestedIdScope: SCOPE,
        registrationId: 'toaster-9',
        token: undefined,
        clientCertificates: derChain(device.cert),
        now,
      },
      referenced,
    );
    expect(result).toMatchObject({ ok: true, enrollment: { id: 'by-reference' } });
  });

  it('refuses a chain whose issuer is not a CA certificate', async () => {
    const notCa = await createTestDeviceCertificate('Not a CA');
    const trusting = enrollmentSet([
      x509Enrollment('group', 'odd', { signingCertificates: { primary: { certificate: notCa.cert } } }),
    ]);
    const device = await createTestDeviceCertificate('toaster-10', { issuer: notCa });
    const result = attest(
      {
        idScope: SCOPE,
        requestedIdScope: SCOPE,
        registrationId: 'toaster-10',
        token: undefined,
        clientCertificates: derChain(device.cert),
        now,
      },
      trusting,
    );
    expect(result).toMatchObject({ ok: false, reason: 'untrusted-chain' });
  });

  it('a certificate for a symmetric-key individual enrollment is refused, a SAS token still works', async () => {
    const device = await createTestDeviceCertificate('keyed-device', { issuer: line });
    expect(run('keyed-device', pemChain(device, line))).toMatchObject({ ok: false, reason: 'wrong-attestation' });
    const token = createRegistrationSasToken({
      idScope: SCOPE,
      registrationId: 'keyed-device',
      key: groupKeys.primaryKey,
      now,
      ttlSeconds: 3600,
    });
    // A token decides when both are presented.
    expect(run('keyed-device', pemChain(device, line), token)).toMatchObject({
      ok: true,
      enrollment: { id: 'keyed-device' },
    });
    expect(run('keyed-device', pemChain(device, line), token)).not.toHaveProperty('x509');
  });

  it('a SAS token for an X.509 individual enrollment is refused with the reason', () => {
    const token = createRegistrationSasToken({
      idScope: SCOPE,
      registrationId: 'solo-x509',
      key: deriveDeviceKey(groupKeys.primaryKey, 'solo-x509'),
      now,
      ttlSeconds: 3600,
    });
    const result = run('solo-x509', undefined, token);
    expect(result).toMatchObject({ ok: false, reason: 'unsupported-attestation' });
    if (!result.ok) expect(result.detail).toContain('TLS handshake');
  });

  it('says what is missing when neither a token nor a certificate was presented', () => {
    const result = run('toaster-11', undefined);
    expect(result).toMatchObject({ ok: false, reason: 'missing-token' });
    if (!result.ok) expect(result.detail).toContain('client certificate');
  });

  it('refuses bytes that are not a certificate', () => {
    const result = attest(
      {
        idScope: SCOPE,
        requestedIdScope: SCOPE,
        registrationId: 'x',
        token: undefined,
        clientCertificates: [Buffer.from('not DER')],
        now,
      },
      set,
    );
    expect(result).toMatchObject({ ok: false, reason: 'certificate-invalid' });
  });
});
