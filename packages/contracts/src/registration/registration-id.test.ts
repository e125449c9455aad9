import { describe, expect, it } from 'vitest';
import { isValidRegistrationId, linesHaveRegistrationIdCharacters, registrationIdProblem } from './registration-id.js';

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

describe('linesHaveRegistrationIdCharacters', () => {
  const alphabet = [
    'a',
    'Z',
    '0',
    '9',
    '-',
    '.',
    '_',
    ':',
    ' ',
    '/',
    '@',
    '`',
    '{',
    '[',
    '~',
    'é',
    '\u0000',
    '\r',
    '\t',
  ];
  const ids: string[] = [''];
  for (let length = 1; length <= 3; length++) {
    for (const prefix of ids.filter((id) => id.length === length - 1)) {
      for (const c of alphabet) ids.push(prefix + c);
    }
  }

  it('takes a line exactly when registrationIdProblem accepts it, for every line of up to 3 characters', () => {
    const disagreements = ids.filter(
      (id) => linesHaveRegistrationIdCharacters(`${id}\n`) !== (registrationIdProblem(id) === null),
    );
    expect(disagreements).toEqual([]);
  });

  it('takes many lines only when every one of them is an id', () => {
    const valid = ids.filter((id) => registrationIdProblem(id) === null);
    const invalid = ids.filter((id) => id !== '' && registrationIdProblem(id) !== null);
    const block = (lines: string[]) => lines.map((id) => `${id}\n`).join('');
    expect(linesHaveRegistrationIdCharacters(block(valid))).toBe(true);
    for (const bad of invalid.slice(0, 500)) {
      const lines = [...valid.slice(0, 50), bad, ...valid.slice(50, 100)];
      expect(linesHaveRegistrationIdCharacters(block(lines)), JSON.stringify(bad)).toBe(false);
    }
  });

  it.each([
    ['no text', ''],
    ['a blank line', 'a\n\nb\n'],
    ['a CRLF line', 'a\r\nb\n'],
    ['a lone CR', 'a\rb\n'],
    ['text after the last LF', 'a\nb'],
    ['a space to trim', ' a\n'],
    ['an id ending with a dot', 'a.\n'],
  ])('refuses %s', (_what, text) => {
    expect(linesHaveRegistrationIdCharacters(text)).toBe(false);
  });

  it('leaves the length to the caller', () => {
    expect(linesHaveRegistrationIdCharacters(`${'x'.repeat(129)}\n`)).toBe(true);
    expect(registrationIdProblem('x'.repeat(129))).toContain('at most 128');
  });
});
