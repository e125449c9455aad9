import { createDeviceKeyDeriver } from '@dpskit/contracts';
import type { SymmetricKeys } from './model.js';

type Deriver = (registrationId: string) => string;

/**
 * The device-key derivers of each enrollment group's keys, built once per keys object (an
 * enrollment set's, replaced when the enrollments change, and then collected with it):
 * `deriveDeviceKey` validates and decodes the base64 group key on every call, and a registration
 * derives up to four device keys (attestation, then the hub identity's two).
 */
const derivers = new WeakMap<SymmetricKeys, { primary: Deriver; secondary: Deriver }>();

/** The device key a group member gets from the group's primary or secondary key. */
export function groupDeviceKey(keys: SymmetricKeys, which: 'primary' | 'secondary', registrationId: string): string {
  let pair = derivers.get(keys);
  if (!pair) {
    pair = { primary: createDeviceKeyDeriver(keys.primaryKey), secondary: createDeviceKeyDeriver(keys.secondaryKey) };
    derivers.set(keys, pair);
  }
  return pair[which](registrationId);
}
