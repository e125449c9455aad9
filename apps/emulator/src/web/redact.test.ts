import { describe, expect, it } from 'vitest';
import { collectSecrets, displayWebhookUrl, MASK, redact } from './redact.js';

const group = (id: string, primaryKey: string, webhookUrl?: string) => ({
  enrollmentGroupId: id,
  attestation: { type: 'symmetricKey' as const, symmetricKey: { primaryKey, secondaryKey: `${primaryKey}-2` } },
  ...(webhookUrl ? { customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' } } : {}),
});

describe('collectSecrets and redact', () => {
  const secrets = collectSecrets(
    {
      groups: [group('g', 'groupKey123==', 'https://fn.example/api/allocate?code=abc%2Bdef12&clientId=default')],
      individuals: [],
    },
    ['servicePolicyKey=='],
  );

  it('finds enrollment keys, webhook query values (raw and decoded) and policy keys', () => {
    expect(secrets).toEqual(
      expect.arrayContaining(['groupKey123==', 'groupKey123==-2', 'abc%2Bdef12', 'abc+def12', 'servicePolicyKey==']),
    );
    // Short values are not secrets: masking them would garble the page.
    expect(secrets).not.toContain('default');
  });

  it('replaces each wherever it appears', () => {
    const text = JSON.stringify({ a: 'groupKey123==-2', b: 'x abc+def12 y', c: 'servicePolicyKey==' });
    expect(redact(text, secrets)).toBe(JSON.stringify({ a: MASK, b: `x ${MASK} y`, c: MASK }));
  });

  it('masks secret-shaped values it was not told about: SAS tokens, sig=, SharedAccessKey=, code=', () => {
    const text = [
      'SharedAccessSignature sr=0ne%2Fregistrations%2Fd&sig=AbC%2B&se=1&skn=registration',
      'https://h/x?sig=zzz&se=1',
      'HostName=h;SharedAccessKeyName=owner;SharedAccessKey=c2VjcmV0',
      'https://f/api/allocate?code=unknownKey&x=1',
      'https://f/api/allocate?****',
    ].join('\n');
    expect(redact(text, []).split('\n')).toEqual([
      `SharedAccessSignature ${MASK}`,
      `https://h/x?sig=${MASK}&se=1`,
      `HostName=h;SharedAccessKeyName=owner;SharedAccessKey=${MASK}`,
      `https://f/api/allocate?code=${MASK}&x=1`,
      'https://f/api/allocate?****',
    ]);
  });
});

describe('displayWebhookUrl', () => {
  it('drops user info and masks the query as DPS does', () => {
    expect(displayWebhookUrl('https://user:pass@fn.example/api/allocate?code=k')).toBe(
      'https://fn.example/api/allocate?****',
    );
    expect(displayWebhookUrl('http://127.0.0.1:7071/api/allocate')).toBe('http://127.0.0.1:7071/api/allocate');
  });
});
