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
