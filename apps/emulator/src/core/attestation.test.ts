import {
  createRegistrationSasToken,
  createSasToken,
  deriveDeviceKey,
  generateSymmetricKey,
  REGISTRATION_KEY_NAME,
  registrationResource,
  SasTokenError,
  verifySasToken,
} from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { createTestCa } from '../testing/certificates.js';
import { groupEnrollment, individualEnrollment, x509Enrollment } from '../testing/enrollments.js';
import { attest } from './attestation.js';
import { type EmulatedEnrollment, enrollmentSet } from './model.js';

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

  // The group loop reads the token once and tests each derived key without throwing (issue #13):
  // its answers must be those of verifying every key with verifySasToken, as it did before.
  it('answers for enrollment groups as verifying each derived key with verifySasToken does', async () => {
    const groupC = groupEnrollment('group-c', keys());
    // A group of X.509 devices has no keys: the symmetric-key loop skips it.
    const ca = await createTestCa('Contoso root');
    const x509Only = x509Enrollment('group', 'group-x509', {
      signingCertificates: { primary: { certificate: ca.cert } },
    });
    const groupSets = [[groupA, groupB], [groupB, groupA], [groupA], [x509Only, groupB, groupC], [x509Only], []];
    const signers = (id: string) => [
      deriveDeviceKey(groupA.keys.primaryKey, id),
      deriveDeviceKey(groupA.keys.secondaryKey, id),
      deriveDeviceKey(groupB.keys.primaryKey, id),
      deriveDeviceKey(groupB.keys.secondaryKey, id),
      deriveDeviceKey(groupC.keys.primaryKey, id),
      deriveDeviceKey(groupC.keys.secondaryKey, id),
      generateSymmetricKey(),
    ];
    const tokens = (id: string): string[] => {
      const list: string[] = [];
      for (const key of signers(id)) {
        list.push(token(id, key), token(id, key, { encodeResource: true }));
        list.push(token(id, key, { ttlSeconds: -1 }), token('other-id', key), token(id, key, { scope: '0ne99999999' }));
        const expiresAt = Math.ceil(now.getTime() / 1000) + 60;
        const resource = registrationResource(SCOPE, id);
        list.push(createSasToken({ resource, key, expiresAt, keyName: 'iothubowner' }));
        list.push(createSasToken({ resource, key, expiresAt }).replace(/&skn=[^&]*/, ''));
      }
      list.push('Bearer abc', 'SharedAccessSignature sr=x', 'SharedAccessSignature sr=a&sig=%%&se=1', '');
      return list;
    };
    let compared = 0;
    for (const groups of groupSets) {
      const enrollments = enrollmentSet(groups);
      for (const id of ['dev-7', 'Dev-Mixed.Case_8']) {
        for (const presented of tokens(id)) {
          const input = { idScope: SCOPE, requestedIdScope: SCOPE, registrationId: id, token: presented, now };
          const result = attest(input, enrollments);
          // An empty token is "no token" before any group is looked at.
          if (presented === '') {
            expect(result).toMatchObject({ ok: false, reason: 'missing-token' });
            continue;
          }
          expect(result).toEqual(verifyingEachKey(presented, id, groups));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(500);
  });
});

/** The group part of attest as it was: verifySasToken per derived key, a SasTokenError per miss. */
function verifyingEachKey(presented: string, registrationId: string, groups: EmulatedEnrollment[]) {
  const expectedResource = registrationResource(SCOPE, registrationId);
  const fail = (reason: string, detail: string) => ({ ok: false, registrationId, reason, detail });
  const verify = (candidates: string[]): { ok: true; keyIndex: number } | { ok: false; error: SasTokenError } => {
    try {
      const options = { keys: candidates, expectedResource, expectedKeyName: REGISTRATION_KEY_NAME, now };
      return { ok: true, keyIndex: verifySasToken(presented, options).keyIndex };
    } catch (err) {
      if (err instanceof SasTokenError) return { ok: false, error: err };
      return { ok: false, error: new SasTokenError('signature-mismatch', (err as Error).message) };
    }
  };
  let lastMismatch: SasTokenError | undefined;
  for (const group of groups) {
    if (!group.keys) continue;
    let result = verify([deriveDeviceKey(group.keys.primaryKey, registrationId)]);
    if (!result.ok && result.error.reason === 'signature-mismatch') {
      const secondary = verify([deriveDeviceKey(group.keys.secondaryKey, registrationId)]);
      result = secondary.ok ? { ok: true, keyIndex: 1 } : secondary;
    }
    if (result.ok) {
      return { ok: true, registrationId, enrollment: group, keyUsed: result.keyIndex === 0 ? 'primary' : 'secondary' };
    }
    if (result.error.reason !== 'signature-mismatch') return fail(result.error.reason, result.error.message);
    lastMismatch = result.error;
  }
  if (lastMismatch) {
    return fail(
      'no-matching-enrollment',
      `no individual enrollment for "${registrationId}" and no enrollment group key signs the token`,
    );
  }
  const check = verify([]);
  if (!check.ok && check.error.reason !== 'signature-mismatch') return fail(check.error.reason, check.error.message);
  return fail('no-matching-enrollment', `no enrollment matches registration id "${registrationId}"`);
}
