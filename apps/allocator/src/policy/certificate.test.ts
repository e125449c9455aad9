import type { X509CertificateInfo } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { requestFrom, TOASTER_BODY } from '../testing/tutorial-requests.js';
import { CertificateMessage, certificatePolicy } from './certificate.js';
import { accept, reject } from './policy.js';

const TOASTERS = 'contoso-toasters-hub-1098.azure-devices.net';
const HEATPUMPS = 'contoso-heatpumps-hub-1098.azure-devices.net';

const info = (subjectName: string): X509CertificateInfo => ({
  subjectName,
  sha1Thumbprint: '0'.repeat(40),
  sha256Thumbprint: '0'.repeat(64),
  issuerName: 'CN=Contoso factory line 1',
  notBeforeUtc: '2026-01-01T00:00:00Z',
  notAfterUtc: '2027-01-01T00:00:00Z',
  serialNumber: '01',
  version: 3,
});

/** The tutorial request as DPS sends it for an X.509 device with this certificate subject. */
const x509Request = (subjectName: string) =>
  requestFrom(TOASTER_BODY, (r) => {
    r.linkedHubs = [TOASTERS, HEATPUMPS];
    delete r.deviceRuntimeContext.symmetricKey;
    r.deviceRuntimeContext.x509 = { clientCertificate: 'MIIB', certificateInfo: info(subjectName) };
  });

describe('certificatePolicy', () => {
  it('splits toasters and heat pumps by the certificate OU, with the type as a twin tag', () => {
    expect(certificatePolicy(x509Request('CN=breakroom499-007, OU=toasters, O=Contoso'))).toEqual(
      accept({ iotHubHostName: TOASTERS, initialTwin: { tags: { deviceType: 'toasters' } } }),
    );
    expect(certificatePolicy(x509Request('CN=breakroom499-088, OU=HeatPumps'))).toEqual(
      accept({ iotHubHostName: HEATPUMPS, initialTwin: { tags: { deviceType: 'HeatPumps' } } }),
    );
  });

  it('decides by the certificate, not by the registration id', () => {
    const request = x509Request('CN=contoso-toaster-007, OU=heatpumps');
    expect(request.deviceRuntimeContext.registrationId).toContain('toaster');
    expect(certificatePolicy(request)).toMatchObject({ ok: true, response: { iotHubHostName: HEATPUMPS } });
  });

  it('refuses symmetric-key devices, certificates without OU and types no hub serves', () => {
    expect(certificatePolicy(requestFrom(TOASTER_BODY))).toEqual(reject(CertificateMessage.NotX509));
    expect(certificatePolicy(x509Request('CN=d1, O=Contoso'))).toEqual(reject(CertificateMessage.NoUnit));
    expect(certificatePolicy(x509Request('CN=d1, OU=kettles'))).toEqual(reject(CertificateMessage.noHub('kettles')));
  });
});
