import { describe, expect, it } from 'vitest';
import { HEATPUMP_REQUEST_2019_03_31, TOASTER_REQUEST_2021_10_01 } from '../fixtures/tutorial.js';
import { parseAllocationRequest, parseAllocationRequestJson, WEBHOOK_API_VERSIONS } from './request.js';

describe('parseAllocationRequestJson', () => {
  it.each([
    ['2021-10-01', TOASTER_REQUEST_2021_10_01, 'contoso-toaster-007'],
    ['2019-03-31', HEATPUMP_REQUEST_2019_03_31, 'contoso-heatpump-088'],
  ])('parses the tutorial body logged with api-version %s', (apiVersion, body, registrationId) => {
    const result = parseAllocationRequestJson(body);
    if (!result.ok) throw result.error;
    const request = result.value;
    expect(request.enrollmentGroup?.customAllocationDefinition?.apiVersion).toBe(apiVersion);
    expect(WEBHOOK_API_VERSIONS).toContain(apiVersion);
    expect(request.deviceRuntimeContext.registrationId).toBe(registrationId);
    expect(request.deviceRuntimeContext.payload).toEqual({
      MyDeviceFirmwareVersion: '12.0.2.5',
      MyDeviceProvisioningVersion: '1.0.0.0',
    });
    expect(request.linkedHubs).toEqual(['contoso-toasters-hub-1098.azure-devices.net']);
    expect(request.enrollmentGroup?.etag).toMatch(/^".*"$/);
  });

  it('keeps fields it does not know, at every level', () => {
    const body = JSON.parse(TOASTER_REQUEST_2021_10_01);
    body.futureTopLevel = 1;
    body.enrollmentGroup.credentialPolicyName = 'default';
    body.enrollmentGroup.attestation.extra = true;
    body.deviceRuntimeContext.newContext = { a: 1 };
    const result = parseAllocationRequest(body);
    if (!result.ok) throw result.error;
    expect(result.value).toMatchObject({
      futureTopLevel: 1,
      enrollmentGroup: { credentialPolicyName: 'default', attestation: { extra: true } },
      deviceRuntimeContext: { newContext: { a: 1 } },
    });
  });

  it('parses an individual enrollment with re-provisioning context', () => {
    const result = parseAllocationRequest({
      individualEnrollment: {
        registrationId: 'mydevice',
        deviceId: 'mydevice-hub-id',
        attestation: { type: 'tpm' },
        allocationPolicy: 'custom',
      },
      deviceRuntimeContext: {
        registrationId: 'mydevice',
        currentIotHubHostName: 'hub-a.azure-devices.net',
        currentDeviceId: 'mydevice-hub-id',
        tpm: { endorsementKey: 'ek', storageRootKey: 'srk' },
      },
      linkedHubs: ['hub-a.azure-devices.net'],
    });
    if (!result.ok) throw result.error;
    expect(result.value.individualEnrollment?.deviceId).toBe('mydevice-hub-id');
    expect(result.value.deviceRuntimeContext.currentIotHubHostName).toBe('hub-a.azure-devices.net');
  });

  it('lists every invalid field by path', () => {
    const result = parseAllocationRequest({
      enrollmentGroup: { enrollmentGroupId: 7, attestation: { type: 'password' } },
      deviceRuntimeContext: { payload: 'not an object' },
      linkedHubs: ['ok', 3],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.error.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'enrollmentGroup.enrollmentGroupId',
        'enrollmentGroup.attestation.type',
        'deviceRuntimeContext.registrationId',
        'deviceRuntimeContext.payload',
        'linkedHubs[1]',
      ]),
    );
    expect(result.error.message).toMatch(/^Invalid allocation request: /);
    expect(result.error.message).toContain('deviceRuntimeContext.payload');
  });

  it('requires exactly one enrollment', () => {
    const neither = parseAllocationRequest({ deviceRuntimeContext: { registrationId: 'a' }, linkedHubs: [] });
    expect(neither.ok).toBe(false);
    if (!neither.ok) expect(neither.error.message).toContain('neither was given');
    const both = parseAllocationRequest({
      enrollmentGroup: { enrollmentGroupId: 'g', attestation: { type: 'symmetricKey' } },
      individualEnrollment: { registrationId: 'a', attestation: { type: 'symmetricKey' } },
      deviceRuntimeContext: { registrationId: 'a' },
      linkedHubs: [],
    });
    expect(both.ok).toBe(false);
    if (!both.ok) expect(both.error.message).toContain('both were given');
  });

  it.each([
    ['', 'not valid JSON'],
    ['{"enrollmentGroup":', 'not valid JSON'],
    ['[]', 'expected object'],
    ['null', 'expected object'],
  ])('reports %j clearly', (text, message) => {
    const result = parseAllocationRequestJson(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toContain(message);
  });
});
