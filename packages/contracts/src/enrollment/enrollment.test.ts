import { describe, expect, it } from 'vitest';
import { enrollmentGroupSchema, maskWebhookUrl, toWebhookView } from './enrollment.js';

describe('toWebhookView', () => {
  const group = enrollmentGroupSchema.parse({
    enrollmentGroupId: 'contoso-custom-allocated-devices',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'cHJpbWFyeQ==', secondaryKey: 'c2Vjb25kYXJ5' } },
    allocationPolicy: 'custom',
    customAllocationDefinition: {
      webhookUrl: 'http://localhost:7071/api/allocate?code=secret',
      apiVersion: '2021-10-01',
    },
    credentialPolicyName: 'kept',
  });

  it('removes the keys and masks the webhook query as DPS does', () => {
    const view = toWebhookView(group);
    expect(view.attestation).toEqual({ type: 'symmetricKey' });
    expect(view.customAllocationDefinition?.webhookUrl).toBe('http://localhost:7071/api/allocate?****');
    expect(view.credentialPolicyName).toBe('kept');
    expect(JSON.stringify(view)).not.toContain('secret');
    expect(JSON.stringify(view)).not.toContain('cHJpbWFyeQ==');
  });

  it('does not modify the enrollment it was given', () => {
    toWebhookView(group);
    expect(group.attestation.symmetricKey?.primaryKey).toBe('cHJpbWFyeQ==');
  });

  it('leaves URLs without a query alone', () => {
    expect(maskWebhookUrl('https://a.example/api/x')).toBe('https://a.example/api/x');
  });
});
