import { deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { groupDeviceKey } from './group-keys.js';

describe('groupDeviceKey', () => {
  it('derives what deriveDeviceKey derives, from either key, call after call', () => {
    const keys = { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };
    for (const id of ['dev-1', 'Dev-2', 'dev-1']) {
      expect(groupDeviceKey(keys, 'primary', id)).toBe(deriveDeviceKey(keys.primaryKey, id));
      expect(groupDeviceKey(keys, 'secondary', id)).toBe(deriveDeviceKey(keys.secondaryKey, id));
    }
    // Other keys (an enrollment changed through the service API) get derivers of their own.
    const rotated = { ...keys, primaryKey: generateSymmetricKey() };
    expect(groupDeviceKey(rotated, 'primary', 'dev-1')).toBe(deriveDeviceKey(rotated.primaryKey, 'dev-1'));
  });

  it('refuses a key that is not base64, as deriveDeviceKey does', () => {
    expect(() => groupDeviceKey({ primaryKey: 'not base64!', secondaryKey: 'c2Vj' }, 'primary', 'dev-1')).toThrow(
      'not valid base64',
    );
  });
});
