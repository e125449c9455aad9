import { describe, expect, it } from 'vitest';
import { distinguishedNameAttribute } from '../x509/distinguished-name.js';
import { parseAllocationRequest } from './request.js';

const info = {
  subjectName: 'CN=toaster-007, OU=toasters, O=Contoso',
  sha1Thumbprint: 'A'.repeat(40),
  sha256Thumbprint: 'B'.repeat(64),
  issuerName: 'CN=Contoso line 1',
  notBeforeUtc: '2026-01-01T00:00:00Z',
  notAfterUtc: '2027-01-01T00:00:00Z',
  serialNumber: '01AB',
  version: 3,
};

describe('deviceRuntimeContext.x509', () => {
  const request = {
    enrollmentGroup: { enrollmentGroupId: 'line-1', attestation: { type: 'x509' } },
    deviceRuntimeContext: {
      registrationId: 'toaster-007',
      x509: {
        clientCertificate: 'MIIB',
        certificateInfo: info,
        certificateChain: ['MIIC'],
        signingCertificateInfo: info,
      },
    },
    linkedHubs: ['toasters.azure-devices.net'],
  };

  it('parses the certificate details a policy decides by', () => {
    const result = parseAllocationRequest(request);
    if (!result.ok) throw result.error;
    const x509 = result.value.deviceRuntimeContext.x509;
    expect(x509?.clientCertificate).toBe('MIIB');
    expect(distinguishedNameAttribute(x509?.certificateInfo?.subjectName ?? '', 'OU')).toBe('toasters');
  });

  it('keeps fields DPS may send that dpskit does not know', () => {
    const result = parseAllocationRequest({
      ...request,
      deviceRuntimeContext: { registrationId: 'toaster-007', x509: { somethingElse: { a: 1 } } },
    });
    if (!result.ok) throw result.error;
    expect(result.value.deviceRuntimeContext.x509).toEqual({ somethingElse: { a: 1 } });
  });

  it('names the field when certificate details have the wrong type', () => {
    const result = parseAllocationRequest({
      ...request,
      deviceRuntimeContext: { registrationId: 'toaster-007', x509: { certificateInfo: { subjectName: 7 } } },
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toContain('deviceRuntimeContext.x509.certificateInfo');
  });
});
