import { describe, expect, it } from 'vitest';
import { createDeviceKeyDeriver, decodeBase64Key, deriveDeviceKey, generateSymmetricKey, KeyError } from './keys.js';

const TUTORIAL_GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

describe('deriveDeviceKey', () => {
  // Vectors computed with `openssl dgst -sha256 -mac HMAC -macopt hexkey:<group key hex>`.
  it.each([
    ['contoso-toaster-007', 'NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI='],
    ['contoso-heatpump-088', 'NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w='],
    ['breakroom499-contoso-tstrsd-007', 'JC8F96eayuQwwz+PkE7IzjH2lIAjCUnAa61tDigBnSs='],
    ['mainbuilding167-contoso-hpsd-088', '6uejA9PfkQgmYylj8Zerp3kcbeVrGZ172YLa7VSnJzg='],
  ])('derives the key of %s from the tutorial group key', (registrationId, expected) => {
    expect(deriveDeviceKey(TUTORIAL_GROUP_KEY, registrationId)).toBe(expected);
  });

  it('is case-sensitive in the registration id, as HMAC is', () => {
    expect(deriveDeviceKey(TUTORIAL_GROUP_KEY, 'Contoso-Toaster-007')).not.toBe(
      deriveDeviceKey(TUTORIAL_GROUP_KEY, 'contoso-toaster-007'),
    );
  });

  it('rejects an empty registration id, naming the field', () => {
    expect(() => deriveDeviceKey(TUTORIAL_GROUP_KEY, '')).toThrowError(
      expect.objectContaining({ name: 'KeyError', field: 'registrationId' }),
    );
  });

  it.each([
    ['not base64 at all!', 'not valid base64'],
    ['abc', 'not valid base64'],
    ['', 'empty'],
    ['YWJj ZA==', 'not valid base64'],
  ])('rejects group key %j with a clear error', (groupKey, message) => {
    let caught: unknown;
    try {
      deriveDeviceKey(groupKey, 'contoso-toaster-007');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeyError);
    expect((caught as KeyError).field).toBe('groupKey');
    expect((caught as KeyError).message).toContain(message);
  });
});

describe('createDeviceKeyDeriver', () => {
  it('derives the same keys as deriveDeviceKey', () => {
    const derive = createDeviceKeyDeriver(TUTORIAL_GROUP_KEY);
    expect(derive('contoso-toaster-007')).toBe('NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=');
    expect(derive('contoso-heatpump-088')).toBe('NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=');
    expect(() => derive('')).toThrowError(expect.objectContaining({ field: 'registrationId' }));
  });

  it('rejects a bad group key when created, not per id', () => {
    expect(() => createDeviceKeyDeriver('not base64!')).toThrowError(expect.objectContaining({ field: 'groupKey' }));
  });
});

describe('generateSymmetricKey', () => {
  it('makes distinct 64-byte base64 keys by default', () => {
    const a = generateSymmetricKey();
    const b = generateSymmetricKey();
    expect(a).not.toBe(b);
    expect(decodeBase64Key(a)).toHaveLength(64);
  });

  it('refuses sizes DPS does not accept', () => {
    expect(() => generateSymmetricKey(8)).toThrow(/16 to 64 bytes/);
    expect(() => generateSymmetricKey(65)).toThrow(/16 to 64 bytes/);
  });
});
