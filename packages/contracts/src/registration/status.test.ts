import { describe, expect, it } from 'vitest';
import { FAILED_OPERATION } from '../fixtures/tutorial.js';
import { parseDeviceRegistrationJson, parseRegistrationOperationStatusJson } from './status.js';

describe('registration shapes', () => {
  it('parses the real failed-operation capture', () => {
    const result = parseRegistrationOperationStatusJson(FAILED_OPERATION);
    if (!result.ok) throw result.error;
    expect(result.value.status).toBe('failed');
    expect(result.value.registrationState?.errorCode).toBe(400207);
    expect(result.value.registrationState?.errorMessage).toBe('Custom allocation failed with status code: 400');
  });

  it('parses an assigned operation with a webhook payload and group id', () => {
    const result = parseRegistrationOperationStatusJson(
      JSON.stringify({
        operationId: '4.17252aac68733575.69153b4c-3a91-4dab-b634-98ca044fdde0',
        status: 'assigned',
        registrationState: {
          registrationId: 'contoso-toaster-007',
          assignedHub: 'contoso-toasters-hub-1098.azure-devices.net',
          deviceId: 'contoso-toaster-007',
          status: 'assigned',
          substatus: 'initialAssignment',
          payload: { hello: 'device' },
          symmetricKey: { enrollmentGroupId: 'contoso-custom-allocated-devices' },
        },
      }),
    );
    if (!result.ok) throw result.error;
    expect(result.value.registrationState?.symmetricKey?.enrollmentGroupId).toBe('contoso-custom-allocated-devices');
  });

  it('rejects an unknown status, naming it', () => {
    const result = parseRegistrationOperationStatusJson('{"operationId":"x","status":"done"}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.issues[0]?.path).toBe('status');
  });

  it('parses the register body the SDKs send, payload optional', () => {
    const withPayload = parseDeviceRegistrationJson('{"registrationId":"contoso-toaster-007","payload":{"a":1}}');
    expect(withPayload.ok && withPayload.value.payload).toEqual({ a: 1 });
    expect(parseDeviceRegistrationJson('{"registrationId":"contoso-toaster-007"}').ok).toBe(true);
    const stringPayload = parseDeviceRegistrationJson('{"registrationId":"x","payload":"text"}');
    expect(stringPayload.ok).toBe(false);
    if (!stringPayload.ok) expect(stringPayload.error.issues[0]?.path).toBe('payload');
  });

  it('takes a csr (base64 DER, no PEM armour) in a register body and issuedCertificateChain in a result', () => {
    const csr = parseDeviceRegistrationJson('{"registrationId":"x","csr":"MIIBQzCB6QIBADA="}');
    expect(csr.ok && csr.value.csr).toBe('MIIBQzCB6QIBADA=');
    const pem = parseDeviceRegistrationJson('{"csr":"-----BEGIN CERTIFICATE REQUEST-----"}');
    expect(pem.ok).toBe(false);
    if (!pem.ok) expect(pem.error.message).toMatch(/csr.*base64 DER/);
    const result = parseRegistrationOperationStatusJson(
      JSON.stringify({
        operationId: 'op',
        status: 'assigned',
        registrationState: { registrationId: 'x', status: 'assigned', issuedCertificateChain: ['MIIB', 'MIIC'] },
      }),
    );
    expect(result.ok && result.value.registrationState?.issuedCertificateChain).toEqual(['MIIB', 'MIIC']);
  });
});
