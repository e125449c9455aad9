/**
 * DPS registration ids: at most 128 characters of alphanumerics and `- . _ :`, ending with an
 * alphanumeric or `-`. DPS treats them case-insensitively.
 */
export const MAX_REGISTRATION_ID_LENGTH = 128;

/** Returns null when valid, otherwise a sentence saying what is wrong. */
export function registrationIdProblem(registrationId: string): string | null {
  if (registrationId.length === 0) return 'registration id is empty';
  if (registrationId.length > MAX_REGISTRATION_ID_LENGTH) {
    return `registration id is ${registrationId.length} characters long; at most ${MAX_REGISTRATION_ID_LENGTH} are allowed`;
  }
  if (!hasRegistrationIdCharacters(registrationId)) {
    return `registration id "${registrationId}" may only contain letters, digits and - . _ : and must end with a letter, digit or -`;
  }
  return null;
}

export function isValidRegistrationId(registrationId: string): boolean {
  return registrationIdProblem(registrationId) === null;
}

/**
 * `/^[A-Za-z0-9\-._:]*[A-Za-z0-9-]$/` as a character scan: `keys derive` checks a million ids,
 * and the scan costs a fraction of a regex test per id.
 */
function hasRegistrationIdCharacters(id: string): boolean {
  const last = id.length - 1;
  for (let i = 0; i < last; i++) {
    const c = id.charCodeAt(i);
    if (!isIdEnding(c) && c !== 0x2e /* . */ && c !== 0x5f /* _ */ && c !== 0x3a /* : */) return false;
  }
  return isIdEnding(id.charCodeAt(last));
}

/** A-Z, a-z, 0-9 or `-`: what an id may end with. */
function isIdEnding(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d /* - */;
}
