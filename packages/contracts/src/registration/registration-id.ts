/**
 * DPS registration ids: at most 128 characters of alphanumerics and `- . _ :`, ending with an
 * alphanumeric or `-`. DPS treats them case-insensitively.
 */
const REGISTRATION_ID = /^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9-]$/;

export const MAX_REGISTRATION_ID_LENGTH = 128;

/** Returns null when valid, otherwise a sentence saying what is wrong. */
export function registrationIdProblem(registrationId: string): string | null {
  if (registrationId.length === 0) return 'registration id is empty';
  if (registrationId.length > MAX_REGISTRATION_ID_LENGTH) {
    return `registration id is ${registrationId.length} characters long; at most ${MAX_REGISTRATION_ID_LENGTH} are allowed`;
  }
  if (!REGISTRATION_ID.test(registrationId)) {
    return `registration id "${registrationId}" may only contain letters, digits and - . _ : and must end with a letter, digit or -`;
  }
  return null;
}

export function isValidRegistrationId(registrationId: string): boolean {
  return registrationIdProblem(registrationId) === null;
}
