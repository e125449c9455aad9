import {
  createRegistrationSasToken,
  createSasToken,
  deriveDeviceKey,
  generateSymmetricKey,
  registrationResource,
} from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { groupEnrollment, individualEnrollment } from '../testing/enrollments.js';
import { attest } from './attestation.js';
import { enrollmentSet } from './model.js';

const SCOPE = '0ne00000A0A';
const now = new Date('2026-06-01T12:00:00Z');
const keys = () => ({ primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() });
const groupA = groupEnrollment('group-a', keys());
const groupB = groupEnrollment('group-b', keys());
const solo = individualEnrollment('Solo-Device', keys());
const set = enrollmentSet([groupA, groupB, solo]);

const token = (
  registrationId: string,
  key: string,
  options: { ttlSeconds?: number; encodeResource?: boolean; scope?: string } = {},
) =>
  createRegistrationSasToken({
    idScope: options.scope ?? SCOPE,
    registrationId,
    key,
    now,
    ttlSeconds: options.ttlSeconds ?? 3600,
    encodeResource: options.encodeResource ?? false,
  });
const run = (registrationId: string, presented: string | undefined, requestedIdScope = SCOPE) =>
  attest({ idScope: SCOPE, requestedIdScope, registrationId, token: presented, now }, set);

describe('attest', () => {
  it('finds the group whose derived key signed the token, primary or secondary', () => {
    const primary = run('dev-1', token('dev-1', deriveDeviceKey(groupB.keys.primaryKey, 'dev-1')));
    expect(primary).toMatchObject({ ok: true, keyUsed: 'primary', enrollment: { id: 'group-b' } });
    const secondary = run('dev-1', token('dev-1', deriveDeviceKey(groupA.keys.secondaryKey, 'dev-1')));
    expect(secondary).toMatchObject({ ok: true, keyUsed: 'secondary', enrollment: { id: 'group-a' } });
  });

  it('verifies raw (Node) and URL-encoded (C, Python) resources', () => {
    const key = deriveDeviceKey(groupA.keys.primaryKey, 'dev-2');
    expect(run('dev-2', token('dev-2', key, { encodeResource: true })).ok).toBe(true);
    expect(run('dev-2', token('dev-2', key, { encodeResource: false })).ok).toBe(true);
  });

  it('uses an individual enrollment first, case-insensitively, and only its keys', () => {
    expect(run('solo-device', token('solo-device', solo.keys.secondaryKey))).toMatchObject({
      ok: true,
      enrollment: { kind: 'individual', id: 'Solo-Device' },
    });
    // A group-derived key does not get past an individual enrollment for the same id.
    const viaGroup = run('Solo-Device', token('Solo-Device', deriveDeviceKey(groupA.keys.primaryKey, 'Solo-Device')));
    expect(viaGroup).toMatchObject({ ok: false, reason: 'signature-mismatch' });
    if (!viaGroup.ok) expect(viaGroup.detail).toContain('individual enrollment "Solo-Device"');
  });

  it.each([
    ['a wrong key', () => run('dev-3', token('dev-3', generateSymmetricKey())), 'no-matching-enrollment'],
    [
      'an expired token',
      () => run('dev-3', token('dev-3', deriveDeviceKey(groupA.keys.primaryKey, 'dev-3'), { ttlSeconds: -1 })),
      'expired',
    ],
    [
      'a token for another id',
      () => run('dev-3', token('dev-4', deriveDeviceKey(groupA.keys.primaryKey, 'dev-4'))),
      'resource-mismatch',
    ],
    [
      'another ID scope in the request',
      () => run('dev-3', token('dev-3', deriveDeviceKey(groupA.keys.primaryKey, 'dev-3')), '0ne99999999'),
      'scope-mismatch',
    ],
    [
      'a token for another ID scope',
      () => run('dev-3', token('dev-3', deriveDeviceKey(groupA.keys.primaryKey, 'dev-3'), { scope: '0ne99999999' })),
      'resource-mismatch',
    ],
    ['no token', () => run('dev-3', undefined), 'missing-token'],
    ['a malformed token', () => run('dev-3', 'Bearer abc'), 'malformed'],
    [
      'an invalid registration id',
      () => run('bad id!', 'SharedAccessSignature sr=x&sig=y&se=1'),
      'invalid-registration-id',
    ],
  ])('refuses %s', (_what, attempt, reason) => {
    const result = attempt();
    expect(result).toMatchObject({ ok: false, reason });
    if (!result.ok) expect(result.detail.length).toBeGreaterThan(5);
  });

  it('reports an expired token as expired even with no enrollment groups at all', () => {
    const expired = createSasToken({
      resource: registrationResource(SCOPE, 'x-1'),
      key: generateSymmetricKey(),
      expiresAt: 1,
    });
    const result = attest(
      { idScope: SCOPE, requestedIdScope: SCOPE, registrationId: 'x-1', token: expired, now },
      enrollmentSet([]),
    );
    expect(result).toMatchObject({ ok: false, reason: 'expired' });
    const unknown = attest(
      {
        idScope: SCOPE,
        requestedIdScope: SCOPE,
        registrationId: 'x-1',
        token: token('x-1', generateSymmetricKey()),
        now,
      },
      enrollmentSet([]),
    );
    expect(unknown).toMatchObject({ ok: false, reason: 'no-matching-enrollment' });
  });
});
