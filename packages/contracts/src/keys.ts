import { createHmac, randomBytes } from 'node:crypto';
import { createHmacSha256Base64 } from './hmac-sha256.js';

/** Raised for a key or id that cannot be used; `field` names the offending input. */
export class KeyError extends Error {
  override readonly name = 'KeyError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes a base64 key strictly: Node's decoder silently skips junk, which would hide typos. */
export function decodeBase64Key(key: string, field = 'key'): Buffer {
  if (key.length === 0) throw new KeyError(field, `${field} is empty`);
  if (!BASE64.test(key)) throw new KeyError(field, `${field} is not valid base64`);
  return Buffer.from(key, 'base64');
}

/** base64(HMAC-SHA256(base64decode(key), message)): the primitive under derived keys and SAS. */
export function hmacSha256Base64(key: string, message: string, field = 'key'): string {
  return createHmac('sha256', decodeBase64Key(key, field)).update(message, 'utf8').digest('base64');
}

/**
 * The device key of a symmetric-key enrollment group member:
 * base64(HMAC-SHA256(base64decode(groupKey), registrationId)).
 */
export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  // One key: createHmac directly. createDeviceKeyDeriver's pads and buffers cost more than one
  // createHmac (2.4-3.1 against 2.0 µs for a first key) and pay off from about the second id.
  const key = decodeBase64Key(groupKey, 'groupKey');
  if (registrationId.length === 0) throw new KeyError('registrationId', 'registrationId is empty');
  return createHmac('sha256', key).update(registrationId, 'utf8').digest('base64');
}

/**
 * `deriveDeviceKey` for many devices of one group: the group key is validated and decoded once, and
 * its HMAC pads are computed once (hmac-sha256.ts), which is most of the cost per id when deriving
 * keys for a large fleet.
 */
export function createDeviceKeyDeriver(groupKey: string): (registrationId: string) => string {
  const hmac = createHmacSha256Base64(decodeBase64Key(groupKey, 'groupKey'));
  return (registrationId) => {
    if (registrationId.length === 0) throw new KeyError('registrationId', 'registrationId is empty');
    return hmac(registrationId);
  };
}

/** A random symmetric key as DPS generates them (64 bytes, base64). */
export function generateSymmetricKey(bytes = 64): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 64) {
    throw new KeyError('bytes', `symmetric keys are 16 to 64 bytes long, not ${bytes}`);
  }
  return randomBytes(bytes).toString('base64');
}
