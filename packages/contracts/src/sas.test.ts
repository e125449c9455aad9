import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveDeviceKey, hmacSha256Base64 } from './keys.js';
import {
  checkSasTokenClaims,
  createDeviceSasToken,
  createRegistrationSasToken,
  createSasToken,
  deviceResource,
  encodeUriComponentStrict,
  MAX_SAS_TOKEN_LENGTH,
  parseSasToken,
  REGISTRATION_KEY_NAME,
  registrationResource,
  SasTokenError,
  sasTokenSignedBy,
  verifySasToken,
} from './sas.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const DEVICE_KEY = deriveDeviceKey(GROUP_KEY, 'contoso-toaster-007');
const RESOURCE = registrationResource('0ne00000A0A', 'contoso-toaster-007');
const BEFORE_EXPIRY = new Date('2025-12-31T23:00:00Z');

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SasTokenError) return err.reason;
    throw err;
  }
  return 'ok';
}

describe('createSasToken', () => {
  // Both tokens were produced by the SDKs themselves (see shared/notes/dps-device-protocol.md §4.4).
  it('matches the Node SDK token byte for byte (raw sr)', () => {
    expect(createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 })).toBe(
      'SharedAccessSignature sr=0ne00000A0A/registrations/contoso-toaster-007&sig=NOVegwZ9lUAE1uBZmzdQV5jJFObbT3lPjhHyKudxTTo%3D&skn=registration&se=1767225600',
    );
  });

  it('signs the encoded sr when asked, as the C and Python SDKs do', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600, encodeResource: true });
    expect(token).toContain('sr=0ne00000A0A%2Fregistrations%2Fcontoso-toaster-007&');
    expect(token).toContain('sig=suJ6n9IYmbyydzY8qhZgpIh8tOOfBugQHSiYTBwuMQo%3D');
  });

  it('creates registration tokens valid for an hour by default', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const token = createRegistrationSasToken({
      idScope: '0ne00000A0A',
      registrationId: 'contoso-toaster-007',
      key: DEVICE_KEY,
      now,
    });
    expect(parseSasToken(token).expiresAt).toBe(now.getTime() / 1000 + 3600);
  });
});

describe('IoT Hub device tokens', () => {
  const HUB = 'hub-a.azure-devices.net';
  const STAR_ID = "toaster(7)*'!";
  // Both printed by azure-iot-device 1.18.4's SharedAccessSignature.create(HUB, id, DEVICE_KEY,
  // 1767225600).toString() (azure-iot-common's create with no key name); the emulator's tests
  // compare the two live and connect to the emulated hub with them.
  const SDK_TOKEN =
    'SharedAccessSignature sr=hub-a.azure-devices.net%2Fdevices%2Fcontoso-toaster-007&sig=6KHQlY7RNFrj3uP6jePEKDHohfy8UuPUZGKcX4BHJ2M%3D&se=1767225600';
  const SDK_STAR_TOKEN =
    'SharedAccessSignature sr=hub-a.azure-devices.net%2Fdevices%2Ftoaster%287%29%2a%27%21&sig=J5zaoDbDn0z6XwuIVqm9rAyKdJQGEupwBMO9FC0UDg8%3D&se=1767225600';
  const AN_HOUR_BEFORE = new Date((1767225600 - 3600) * 1000);

  it('createSasToken names no key (skn) for a resource that is not a registration', () => {
    const token = createSasToken({
      resource: deviceResource(HUB, 'contoso-toaster-007'),
      key: DEVICE_KEY,
      expiresAt: 1767225600,
    });
    expect(token).not.toContain('skn=');
    expect(parseSasToken(token).keyName).toBeUndefined();
    expect(createSasToken({ resource: HUB, key: DEVICE_KEY, expiresAt: 1767225600 })).not.toContain('skn=');
  });

  it('createSasToken names the key it is given, for any resource', () => {
    const token = createSasToken({ resource: HUB, key: DEVICE_KEY, expiresAt: 1767225600, keyName: 'iothubowner' });
    expect(parseSasToken(token).keyName).toBe('iothubowner');
  });

  it("createDeviceSasToken is azure-iot-device's SharedAccessSignature.create, byte for byte", () => {
    const at = { hubHostName: HUB, key: DEVICE_KEY, now: AN_HOUR_BEFORE };
    expect(createDeviceSasToken({ ...at, deviceId: 'contoso-toaster-007' })).toBe(SDK_TOKEN);
    expect(createDeviceSasToken({ ...at, deviceId: STAR_ID })).toBe(SDK_STAR_TOKEN);
  });

  it("escapes !'()* in lower case, as azure-iot-common does", () => {
    expect(encodeUriComponentStrict("a!'()*b/")).toBe('a%21%27%28%29%2ab%2F');
  });

  it('is valid for an hour by default (whole seconds, rounded down) or ttlSeconds', () => {
    const now = new Date('2026-01-01T00:00:00.900Z');
    const base = { hubHostName: HUB, deviceId: 'd1', key: DEVICE_KEY, now };
    expect(parseSasToken(createDeviceSasToken(base)).expiresAt).toBe(Date.parse('2026-01-01T01:00:00Z') / 1000);
    expect(parseSasToken(createDeviceSasToken({ ...base, ttlSeconds: 60 })).expiresAt).toBe(
      Date.parse('2026-01-01T00:01:00Z') / 1000,
    );
  });

  it('signs sr raw when asked, and both forms verify for the device', () => {
    const base = { hubHostName: HUB, deviceId: STAR_ID, key: DEVICE_KEY, now: AN_HOUR_BEFORE };
    const raw = createDeviceSasToken({ ...base, encodeResource: false });
    expect(raw).toContain(`sr=${HUB}/devices/${STAR_ID}&`);
    for (const token of [raw, createDeviceSasToken(base)]) {
      const verified = verifySasToken(token, {
        keys: [DEVICE_KEY],
        expectedResource: deviceResource(HUB, STAR_ID),
        now: AN_HOUR_BEFORE,
      });
      expect(verified.keyName).toBeUndefined();
    }
  });

  it('refuses a missing host or device id and a ttl that is not a positive number, naming the field', () => {
    const base = { hubHostName: HUB, deviceId: 'd1', key: DEVICE_KEY };
    const field = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as { field?: string }).field;
      }
      return 'ok';
    };
    expect(field(() => createDeviceSasToken({ ...base, hubHostName: '' }))).toBe('hubHostName');
    expect(field(() => createDeviceSasToken({ ...base, deviceId: '' }))).toBe('deviceId');
    for (const ttlSeconds of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(field(() => createDeviceSasToken({ ...base, ttlSeconds }))).toBe('ttlSeconds');
    }
  });
});

describe('verifySasToken round trips', () => {
  const options = { keys: [DEVICE_KEY], expectedResource: RESOURCE, now: BEFORE_EXPIRY };

  it('accepts a raw-sr token', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(verifySasToken(token, options).keyIndex).toBe(0);
  });

  it('accepts an encoded-sr token, in any field order', () => {
    const token =
      'SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fcontoso-toaster-007&sig=suJ6n9IYmbyydzY8qhZgpIh8tOOfBugQHSiYTBwuMQo%3D&se=1767225600&skn=registration';
    expect(verifySasToken(token, options).resource).toBe(RESOURCE);
  });

  it('accepts lower-case percent-encoding of sr (C SDK), signed as it appears', () => {
    const sr = '0ne00000A0A%2fregistrations%2fcontoso-toaster-007';
    const sig = createHmac('sha256', Buffer.from(DEVICE_KEY, 'base64')).update(`${sr}\n1767225600`).digest('base64');
    const token = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=1767225600&skn=registration`;
    expect(verifySasToken(token, options).rawResource).toBe(sr);
  });

  it('accepts the secondary key and says which key matched', () => {
    const secondary = deriveDeviceKey('c2Vjb25kYXJ5LWdyb3VwLWtleS1mb3ItdGVzdHM=', 'contoso-toaster-007');
    const token = createSasToken({ resource: RESOURCE, key: secondary, expiresAt: 1767225600 });
    expect(verifySasToken(token, { ...options, keys: [DEVICE_KEY, secondary] }).keyIndex).toBe(1);
  });

  it('compares the resource case-insensitively (registration ids are)', () => {
    const token = createSasToken({ resource: RESOURCE.toUpperCase(), key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(verifySasToken(token, options).resource).toBe(RESOURCE.toUpperCase());
  });

  it('rejects a tampered signature', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    const tampered = token.replace('sig=N', 'sig=M');
    expect(reason(() => verifySasToken(tampered, options))).toBe('signature-mismatch');
  });

  it('rejects a token whose expiry was moved after signing', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token.replace('se=1767225600', 'se=1767225601'), options))).toBe(
      'signature-mismatch',
    );
  });

  it('rejects a token signed with another key', () => {
    const token = createSasToken({ resource: RESOURCE, key: GROUP_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, options))).toBe('signature-mismatch');
  });

  it('rejects an expired token', () => {
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, { ...options, now: new Date('2026-01-01T00:00:01Z') }))).toBe('expired');
  });

  it('rejects a token for another registration', () => {
    const other = registrationResource('0ne00000A0A', 'contoso-heatpump-088');
    const token = createSasToken({ resource: other, key: DEVICE_KEY, expiresAt: 1767225600 });
    expect(reason(() => verifySasToken(token, options))).toBe('resource-mismatch');
  });

  it('rejects a token for another id scope', () => {
    const token = createSasToken({
      resource: registrationResource('0ne00000B0B', 'contoso-toaster-007'),
      key: DEVICE_KEY,
      expiresAt: 1767225600,
    });
    expect(reason(() => verifySasToken(token, options))).toBe('resource-mismatch');
  });
});

describe('checkSasTokenClaims and sasTokenSignedBy (verifySasToken in two steps)', () => {
  const options = { expectedResource: RESOURCE, expectedKeyName: REGISTRATION_KEY_NAME, now: BEFORE_EXPIRY };
  const signed = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });

  it('reads the token once and tests any number of keys against it, without throwing for a miss', () => {
    const claims = checkSasTokenClaims(signed, options);
    expect(claims.parsed).toEqual(parseSasToken(signed));
    expect(sasTokenSignedBy(claims, GROUP_KEY)).toBe(false);
    expect(sasTokenSignedBy(claims, DEVICE_KEY)).toBe(true);
    expect(() => sasTokenSignedBy(claims, 'not base64!')).toThrow();
  });

  it('throws what verifySasToken throws for everything but the signature, in its order', () => {
    const cases = [
      signed,
      'Bearer x',
      signed.replace('skn=registration', 'skn=service'),
      createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1000 }),
      createSasToken({ resource: `${RESOURCE}x`, key: DEVICE_KEY, expiresAt: 1000 }),
      createSasToken({ resource: `${RESOURCE}x`, key: DEVICE_KEY, expiresAt: 1767225600, keyName: 'other' }),
    ];
    for (const token of cases) {
      const viaVerify = reason(() => verifySasToken(token, { ...options, keys: [] }));
      const viaClaims = reason(() => checkSasTokenClaims(token, options));
      // With no key to try, verifySasToken ends in a signature mismatch where the claims hold.
      expect(viaClaims === 'ok' ? 'signature-mismatch' : viaClaims).toBe(viaVerify);
    }
  });
});

describe('parseSasToken', () => {
  it.each([
    ['', 'does not start with'],
    ['Bearer abc', 'does not start with'],
    ['SharedAccessSignature sig=abc&se=1', 'no sr'],
    ['SharedAccessSignature sr=a&se=1', 'no sig'],
    ['SharedAccessSignature sr=a&sig=b', 'no se'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=soon', 'not a number'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=1&se=2', 'appears twice'],
    ['SharedAccessSignature sr=%E0%A4%A&sig=YWJj&se=1', 'not valid URL encoding'],
    ['SharedAccessSignature junk', 'not name=value'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=1&x=1', 'not one of sr, sig, se, skn'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=1&skn=a&skn=b', 'appears twice'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=1&skn=%E0%A4%A', 'skn is not valid URL encoding'],
    ['SharedAccessSignature sr=a&sig=YWJ&se=1', 'not canonical base64'],
    ['SharedAccessSignature sr=a&sig=YWJj!&se=1', 'not canonical base64'],
    ['SharedAccessSignature sr=a&sig=YWI-&se=1', 'not canonical base64'],
    ['SharedAccessSignature sr=a&sig=YWJj&se=1234567890123', 'not a number'],
    [`SharedAccessSignature sr=${'a'.repeat(MAX_SAS_TOKEN_LENGTH)}&sig=YWJj&se=1`, 'longer than'],
  ])('rejects %j as malformed (%s)', (token, message) => {
    expect(() => parseSasToken(token)).toThrowError(expect.objectContaining({ reason: 'malformed' }));
    expect(() => parseSasToken(token)).toThrow(message);
  });
});

describe('strict token parsing (issue 8 items 3-5)', () => {
  const options = {
    keys: [DEVICE_KEY],
    expectedResource: RESOURCE,
    expectedKeyName: REGISTRATION_KEY_NAME,
    now: BEFORE_EXPIRY,
  };
  const good = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt: 1767225600 });
  const signature = 'NOVegwZ9lUAE1uBZmzdQV5jJFObbT3lPjhHyKudxTTo=';
  const encodedSignature = encodeURIComponent(signature);
  const withSkn = (skn: string) => good.replace('skn=registration', `skn=${skn}`);
  const withSig = (sig: string) => good.replace(`sig=${encodedSignature}`, `sig=${sig}`);

  it('still verifies the good token, and one without skn (the Python SDK sends none)', () => {
    expect(verifySasToken(good, options).keyName).toBe('registration');
    expect(verifySasToken(good.replace('&skn=registration', ''), options).keyName).toBeUndefined();
  });

  it.each([
    ['skn=iothubowner', withSkn('iothubowner'), 'key-name-mismatch'],
    ['skn=provisioningserviceowner', withSkn('provisioningserviceowner'), 'key-name-mismatch'],
    ['an empty skn', withSkn(''), 'key-name-mismatch'],
    ['skn=Registration (key names are case-sensitive)', withSkn('Registration'), 'key-name-mismatch'],
    ['junk appended to the signature', withSig(`${encodedSignature}junk`), 'malformed'],
    ['a second padded block appended', withSig(`${encodedSignature}YWJj`), 'malformed'],
    ['the signature without its padding', withSig(signature.slice(0, -1)), 'malformed'],
    ['a raw space in the signature', withSig(`${encodedSignature} `), 'malformed'],
    ['an unknown field (12 KB)', `${good}&x=${'a'.repeat(12 * 1024)}`, 'malformed'],
    ['an unknown short field', `${good}&x=1`, 'malformed'],
    ['an empty field', `${good}&`, 'malformed'],
    ['no expiry', good.replace('&se=1767225600', ''), 'malformed'],
    ['an empty expiry', good.replace('se=1767225600', 'se='), 'malformed'],
  ])('refuses %s', (_name, token, expected) => {
    expect(reason(() => verifySasToken(token, options))).toBe(expected);
  });

  it('refuses the base64url alphabet, padded or not', () => {
    // A signature with + or / in it, so that base64url spells it differently.
    let expiresAt = 1767225600;
    let sig = hmacSha256Base64(DEVICE_KEY, `${RESOURCE}\n${expiresAt}`);
    while (!/[+/]/.test(sig)) sig = hmacSha256Base64(DEVICE_KEY, `${RESOURCE}\n${--expiresAt}`);
    const token = createSasToken({ resource: RESOURCE, key: DEVICE_KEY, expiresAt });
    expect(verifySasToken(token, options).signature).toBe(sig);
    const url = Buffer.from(sig, 'base64').toString('base64url');
    for (const variant of [url, `${url}%3D`]) {
      const forged = token.replace(`sig=${encodeURIComponent(sig)}`, `sig=${variant}`);
      expect(forged).not.toBe(token);
      expect(reason(() => verifySasToken(forged, options))).toBe('malformed');
    }
  });

  it('refuses a signature that differs only in its unused trailing bits', () => {
    // The last base64 digit of a 32-byte value carries 2 padding bits; "o" and "p" decode alike.
    const twin = signature.replace(/o=$/, 'p=');
    expect(Buffer.from(twin, 'base64').equals(Buffer.from(signature, 'base64'))).toBe(true);
    expect(reason(() => verifySasToken(withSig(encodeURIComponent(twin)), options))).toBe('malformed');
  });

  it('never puts any part of the token into an error message', () => {
    const secretish = 'S3CR3TFRAGMENT';
    const tokens = [
      `${good}&${secretish}=1`,
      `${good}&${secretish}`,
      withSig(`${encodedSignature}${secretish}`),
      withSkn(secretish),
      good.replace('se=1767225600', `se=${secretish}`),
      createSasToken({ resource: `${secretish}/registrations/x`, key: DEVICE_KEY, expiresAt: 1767225600 }),
    ];
    for (const token of tokens) {
      let message = '';
      try {
        verifySasToken(token, options);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(secretish);
    }
  });
});

/**
 * parseSasToken as it was before its fields were kept in variables and the signature's base64 was
 * checked by a pattern (a Map, the parts' entries(), a round trip through Buffer): the reference the
 * present parser must equal, result and error alike.
 */
function referenceParse(token: string): unknown {
  const fail = (message: string) => new SasTokenError('malformed', message);
  if (token.length > MAX_SAS_TOKEN_LENGTH) throw fail(`token is longer than ${MAX_SAS_TOKEN_LENGTH} characters`);
  const trimmed = token.trim();
  if (!trimmed.startsWith('SharedAccessSignature ')) throw fail('token does not start with "SharedAccessSignature "');
  const names = ['sr', 'sig', 'se', 'skn'];
  const fields = new Map<string, string>();
  for (const [index, part] of trimmed.slice('SharedAccessSignature '.length).trim().split('&').entries()) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw fail(`token field ${index + 1} is not name=value`);
    const name = part.slice(0, eq);
    if (!names.includes(name)) throw fail(`token field ${index + 1} is not one of ${names.join(', ')}`);
    if (fields.has(name)) throw fail(`token field "${name}" appears twice`);
    fields.set(name, part.slice(eq + 1));
  }
  for (const name of ['sr', 'sig', 'se']) if (!fields.get(name)) throw fail(`token has no ${name} field`);
  const decode = (value: string) => {
    try {
      return decodeURIComponent(value);
    } catch {
      return null;
    }
  };
  const resource = decode(fields.get('sr') as string);
  const signature = decode(fields.get('sig') as string);
  if (resource === null) throw fail('token sr is not valid URL encoding');
  if (signature === null) throw fail('token sig is not valid URL encoding');
  if (!(signature.length > 0 && Buffer.from(signature, 'base64').toString('base64') === signature)) {
    throw fail('token sig is not canonical base64');
  }
  if (!/^\d{1,12}$/.test(fields.get('se') as string)) throw fail('token se is not a number of seconds');
  const skn = fields.get('skn');
  let keyName: string | undefined;
  if (skn !== undefined) {
    const decoded = decode(skn);
    if (decoded === null) throw fail('token skn is not valid URL encoding');
    keyName = decoded;
  }
  return { rawResource: fields.get('sr'), resource, signature, expiresAt: Number(fields.get('se')), keyName };
}

/** What a parse gives, as comparable text: its result, or its error's reason and message. */
const outcome = (parse: (token: string) => unknown, token: string): string => {
  try {
    return JSON.stringify({ ok: parse(token) });
  } catch (err) {
    if (!(err instanceof SasTokenError)) throw err;
    return JSON.stringify({ error: [err.reason, err.message] });
  }
};

describe('parseSasToken equals the reference parser', () => {
  it('on tokens with fields missing, empty, repeated, unknown, reordered and malformed', () => {
    const values: Record<string, string[]> = {
      sr: ['0ne00000A0A/registrations/dev-1', 'a%2Fb', '%E0%A4%A', ''],
      sig: [encodeURIComponent('NOVegwZ9lUAE1uBZmzdQV5jJFObbT3lPjhHyKudxTTo='), 'YWJj', 'YWJ', ''],
      se: ['1767225600', 'soon', '', '1234567890123'],
      skn: ['registration', '%E0%A4%A', ''],
    };
    const parts: string[] = [];
    for (const [name, list] of Object.entries(values)) for (const value of list) parts.push(`${name}=${value}`);
    parts.push('x=1', 'junk', '=v', 'sr', '');
    let checked = 0;
    const differing: string[] = [];
    // Every ordered choice of up to four parts: every order, repeat and omission of the fields.
    const pick = (chosen: string[]) => {
      if (chosen.length > 0) {
        for (const token of [
          `SharedAccessSignature ${chosen.join('&')}`,
          ...(chosen.length === 1 ? [` SharedAccessSignature  ${chosen.join('&')} `] : []),
        ]) {
          if (outcome(parseSasToken, token) !== outcome(referenceParse, token)) differing.push(token);
          checked++;
        }
      }
      if (chosen.length === 4) return;
      // All parts for the first two places, a third of them for each later one.
      for (const part of chosen.length < 2 ? parts : parts.filter((_, i) => i % 3 === chosen.length % 3)) {
        pick([...chosen, part]);
      }
    };
    pick([]);
    expect(differing).toEqual([]);
    expect(checked).toBeGreaterThan(5_000);
  });

  it('on signatures of every length and tail, canonical or not (the base64 pattern)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const odd = ['-', '_', ' ', '=', '%3D', '.', '\n', 'é'];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const signatures: string[] = [];
    for (let length = 0; length <= 48; length++) {
      for (let k = 0; k < 20; k++) {
        let sig = '';
        for (let i = 0; i < length; i++) sig += alphabet[random(64)];
        signatures.push(sig, `${sig}=`, `${sig}==`, `${sig}===`);
        if (length > 0) signatures.push(sig.slice(0, -1) + (odd[random(odd.length)] as string));
      }
    }
    // Canonical ones of every byte length, and each with its last digit's unused bits set.
    for (let bytes = 1; bytes <= 34; bytes++) {
      const canonical = Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 37 + bytes) & 0xff)).toString(
        'base64',
      );
      signatures.push(canonical);
      const last = canonical.replace(/=+$/, '').length - 1;
      for (const digit of alphabet) signatures.push(canonical.slice(0, last) + digit + canonical.slice(last + 1));
    }
    let canonicalCount = 0;
    const differing: string[] = [];
    for (const sig of signatures) {
      const token = `SharedAccessSignature sr=a&sig=${encodeURIComponent(sig)}&se=1`;
      const mine = outcome(parseSasToken, token);
      if (mine !== outcome(referenceParse, token)) differing.push(sig);
      if (mine.startsWith('{"ok"')) canonicalCount++;
    }
    expect(differing).toEqual([]);
    expect(canonicalCount).toBeGreaterThan(500);
    expect(signatures.length - canonicalCount).toBeGreaterThan(3_000);
  });
});
