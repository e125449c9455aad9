import { describe, expect, it } from 'vitest';
import { isValidRegistrationId, registrationIdProblem } from './registration-id.js';

describe('registration ids', () => {
  it.each(['contoso-toaster-007', 'a', 'A.b_c:d-', 'x'.repeat(128)])('accepts %j', (id) => {
    expect(isValidRegistrationId(id)).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['x'.repeat(129), 'at most 128'],
    ['has space', 'may only contain'],
    ['ends-with-dot.', 'must end with'],
    ['slash/inside', 'may only contain'],
  ])('rejects %j (%s)', (id, message) => {
    expect(registrationIdProblem(id)).toContain(message);
  });
});

describe('registration id characters', () => {
  // The rule as DPS documents it, kept here as the specification the implementation must match.
  const SPEC = /^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9-]$/;
  const alphabet = ['a', 'Z', '0', '9', '-', '.', '_', ':', ' ', '/', '@', '`', '{', '[', '~', 'é', '\u0000', '\n'];

  it('accepts exactly what the documented pattern accepts, for every id of up to 3 characters', () => {
    const ids: string[] = [''];
    for (let length = 1; length <= 3; length++) {
      for (const prefix of ids.filter((id) => id.length === length - 1)) {
        for (const c of alphabet) ids.push(prefix + c);
      }
    }
    const disagreements = ids.filter((id) => isValidRegistrationId(id) !== SPEC.test(id));
    expect(disagreements).toEqual([]);
    expect(ids.length).toBeGreaterThan(6000);
  });
});
