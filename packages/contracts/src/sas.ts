import { timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from './hmac-sha256.js';
import { decodeBase64Key, hmacSha256Base64, KeyError } from './keys.js';

const PREFIX = 'SharedAccessSignature ';

/** The key name DPS expects in device registration tokens. */
export const REGISTRATION_KEY_NAME = 'registration';

/** `{idScope}/registrations/{registrationId}`: the resource a device registration token is for. */
export function registrationResource(idScope: string, registrationId: string): string {
  return `${idScope}/registrations/${registrationId}`;
}

/** `{hubHostName}/devices/{deviceId}`: the resource an IoT Hub device token is for. */
export function deviceResource(hubHostName: string, deviceId: string): string {
  return `${hubHostName}/devices/${deviceId}`;
}

/** `{idScope}/registrations/{registrationId}`, neither part holding a `/`. */
const REGISTRATION_RESOURCE = /^[^/]+\/registrations\/[^/]+$/;

/**
 * `encodeURIComponent` that also escapes `!'()*`, as azure-iot-common's function of this name does,
 * in its lower case (`*` is `%2a`): a token's signature is over `sr` as written, so a device token
 * for an id holding `*` is the Node SDK's byte for byte only so (the other four are digits alike).
 */
export function encodeUriComponentStrict(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

export interface CreateSasOptions {
  resource: string;
  key: string;
  /** Expiry in seconds since the epoch. */
  expiresAt: number;
  /**
   * `skn`: the shared access policy whose key signs the token. Omitted, a DPS registration
   * resource (`{idScope}/registrations/{id}`) gets `registration`, as the Node provisioning SDK
   * sends, and any other resource gets no `skn`, as azure-iot-common's
   * `SharedAccessSignature.create` does without a key name: an IoT Hub device token
   * (`sr={hub}/devices/{id}`) carries none, and IoT Hub refuses one that names a policy the device
   * key is not.
   */
  keyName?: string;
  /**
   * Whether `sr` is URL-encoded (and signed in that form) as the C and Python SDKs and the docs
   * do. The Node SDK leaves it raw; DPS accepts both.
   */
  encodeResource?: boolean;
}

export function createSasToken(options: CreateSasOptions): string {
  const { resource, key, expiresAt, encodeResource = false } = options;
  const keyName = options.keyName ?? (REGISTRATION_RESOURCE.test(resource) ? REGISTRATION_KEY_NAME : undefined);
  if (!Number.isInteger(expiresAt) || expiresAt <= 0) {
    throw new KeyError('expiresAt', `expiresAt must be a positive integer of seconds, not ${expiresAt}`);
  }
  const sr = encodeResource ? encodeUriComponentStrict(resource) : resource;
  const sig = hmacSha256Base64(key, `${sr}\n${expiresAt}`);
  const skn = keyName === undefined ? '' : `&skn=${encodeUriComponentStrict(keyName)}`;
  return `${PREFIX}sr=${sr}&sig=${encodeUriComponentStrict(sig)}${skn}&se=${expiresAt}`;
}

/** A device registration token, valid for `ttlSeconds` (one hour, as the Node SDK does). */
export function createRegistrationSasToken(options: {
  idScope: string;
  registrationId: string;
  key: string;
  ttlSeconds?: number;
  now?: Date;
  encodeResource?: boolean;
}): string {
  const now = (options.now ?? new Date()).getTime() / 1000;
  const token: CreateSasOptions = {
    resource: registrationResource(options.idScope, options.registrationId),
    key: options.key,
    expiresAt: Math.ceil(now + (options.ttlSeconds ?? 3600)),
  };
  if (options.encodeResource !== undefined) token.encodeResource = options.encodeResource;
  return createSasToken(token);
}

/**
 * An IoT Hub device token (`SharedAccessSignature sr={hub}%2Fdevices%2F{id}&sig=…&se=…`, no `skn`),
 * signed with the device's own key, valid for `ttlSeconds` (one hour by default): what
 * azure-iot-device's `SharedAccessSignature.create(host, deviceId, key, expiry)` and a device
 * client on a connection string with `SharedAccessKey` produce, byte for byte, `sr` URL-encoded.
 * With `encodeResource: false`, `sr` raw (IoT Hub accepts both).
 */
export function createDeviceSasToken(options: {
  hubHostName: string;
  deviceId: string;
  key: string;
  ttlSeconds?: number;
  now?: Date;
  encodeResource?: boolean;
}): string {
  for (const field of ['hubHostName', 'deviceId'] as const) {
    if (!options[field]) throw new KeyError(field, `${field} is required for a device token`);
  }
  const ttlSeconds = options.ttlSeconds ?? 3600;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new KeyError('ttlSeconds', `ttlSeconds must be a positive number of seconds, not ${ttlSeconds}`);
  }
  const now = (options.now ?? new Date()).getTime() / 1000;
  return createSasToken({
    resource: deviceResource(options.hubHostName, options.deviceId),
    key: options.key,
    // Whole seconds, rounded down as the device SDK's token renewal does (floor(now) + ttl).
    expiresAt: Math.floor(now + ttlSeconds),
    encodeResource: options.encodeResource ?? true,
  });
}

export interface ParsedSasToken {
  /** `sr` exactly as it appears in the token: the text the signature was computed over. */
  rawResource: string;
  /** `sr` URL-decoded. */
  resource: string;
  /** The signature, URL-decoded: canonical base64. */
  signature: string;
  expiresAt: number;
  keyName: string | undefined;
}

export type SasFailureReason =
  | 'malformed'
  | 'expired'
  | 'resource-mismatch'
  | 'key-name-mismatch'
  | 'signature-mismatch';

export class SasTokenError extends Error {
  override readonly name = 'SasTokenError';
  constructor(
    readonly reason: SasFailureReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Longest token read (characters). The longest valid registration token (a 128-character
 * registration id percent-encoded, a 44-character signature, `skn`, `se`) is under 600; anything
 * longer is refused before it is split, so a flood of huge tokens costs nothing.
 */
export const MAX_SAS_TOKEN_LENGTH = 2048;

/** The fields a SAS token may carry, each at most once. */
const SAS_FIELDS = ['sr', 'sig', 'se', 'skn'] as const;

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

/**
 * Canonical base64 only: the standard alphabet, padding present, no trailing bits. Node's decoder
 * silently skips junk and accepts base64url, which would let many strings verify as one signature.
 */
function isCanonicalBase64(value: string): boolean {
  // What Buffer.from(value, 'base64').toString('base64') === value says (sas.test compares them),
  // without the two conversions (~0.6 us a token): the last character before '==' keeps no bits
  // below its top two (A, Q, g, w), the one before '=' none below its top four.
  return value.length > 0 && CANONICAL_BASE64.test(value);
}

/**
 * Parses `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]`, fields in any order, strictly:
 * only those four fields, each once; `sig` canonical base64; `se` a whole number of seconds.
 * Error messages name the field and the cause but never carry any part of the token, so they
 * are safe to log.
 */
export function parseSasToken(token: string): ParsedSasToken {
  if (token.length > MAX_SAS_TOKEN_LENGTH) {
    throw new SasTokenError('malformed', `token is longer than ${MAX_SAS_TOKEN_LENGTH} characters`);
  }
  const trimmed = token.trim();
  if (!trimmed.startsWith(PREFIX)) {
    throw new SasTokenError('malformed', 'token does not start with "SharedAccessSignature "');
  }
  // Each field in a variable of its own, not a Map, and the parts walked by index: the parse runs on
  // every device CONNECT (and HTTPS request); the Map, the entries() iterator and the list of required
  // fields cost ~0.7 us of its ~4 (micro, Node 20). Same checks in the same order, same messages.
  let rawResource: string | undefined;
  let rawSignature: string | undefined;
  let rawExpiry: string | undefined;
  let skn: string | undefined;
  const parts = trimmed.slice(PREFIX.length).trim().split('&');
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index] as string;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SasTokenError('malformed', `token field ${index + 1} is not name=value`);
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    let seen: string | undefined;
    if (name === 'sr') {
      seen = rawResource;
      rawResource = value;
    } else if (name === 'sig') {
      seen = rawSignature;
      rawSignature = value;
    } else if (name === 'se') {
      seen = rawExpiry;
      rawExpiry = value;
    } else if (name === 'skn') {
      seen = skn;
      skn = value;
    } else {
      throw new SasTokenError('malformed', `token field ${index + 1} is not one of ${SAS_FIELDS.join(', ')}`);
    }
    if (seen !== undefined) throw new SasTokenError('malformed', `token field "${name}" appears twice`);
  }
  if (!rawResource) throw new SasTokenError('malformed', 'token has no sr field');
  if (!rawSignature) throw new SasTokenError('malformed', 'token has no sig field');
  if (!rawExpiry) throw new SasTokenError('malformed', 'token has no se field');
  const resource = safeDecode(rawResource);
  const signature = safeDecode(rawSignature);
  if (resource === null) throw new SasTokenError('malformed', 'token sr is not valid URL encoding');
  if (signature === null) throw new SasTokenError('malformed', 'token sig is not valid URL encoding');
  if (!isCanonicalBase64(signature)) throw new SasTokenError('malformed', 'token sig is not canonical base64');
  // Twelve digits reach past the year 9999; a longer number is no expiry anyone meant.
  if (!/^\d{1,12}$/.test(rawExpiry)) {
    throw new SasTokenError('malformed', 'token se is not a number of seconds');
  }
  let keyName: string | undefined;
  if (skn !== undefined) {
    const decoded = safeDecode(skn);
    if (decoded === null) throw new SasTokenError('malformed', 'token skn is not valid URL encoding');
    keyName = decoded;
  }
  return {
    rawResource,
    resource,
    signature,
    expiresAt: Number(rawExpiry),
    keyName,
  };
}

export interface VerifySasOptions {
  /** Candidate keys (primary, secondary); the token is valid if any of them signed it. */
  keys: readonly string[];
  /** The resource the token must be for, compared case-insensitively after URL-decoding. */
  expectedResource: string;
  /**
   * The key name the token must carry in `skn` when it carries one (`registration` for device
   * tokens). A token without `skn` is still accepted: the Python SDK sends none and DPS
   * provisions it.
   */
  expectedKeyName?: string;
  now?: Date;
}

/**
 * Verifies a SAS token and returns the parsed token, or throws `SasTokenError` saying why not.
 * The signature is checked over `sr` exactly as it appears in the token, so raw (Node SDK) and
 * encoded (C, Python, docs) tokens both verify.
 */
export function verifySasToken(token: string, options: VerifySasOptions): ParsedSasToken & { keyIndex: number } {
  const claims = checkSasTokenClaims(token, options);
  const { keys } = options;
  for (let index = 0; index < keys.length; index++) {
    if (sasTokenSignedBy(claims, keys[index] as string)) {
      const { parsed } = claims;
      // Fields named, not `{ ...parsed, keyIndex }`: optimized code gives every object that starts
      // with a spread and gets more properties a map of its own, which each reader then misses.
      return {
        rawResource: parsed.rawResource,
        resource: parsed.resource,
        signature: parsed.signature,
        expiresAt: parsed.expiresAt,
        keyName: parsed.keyName,
        keyIndex: index,
      };
    }
  }
  throw new SasTokenError('signature-mismatch', 'token signature does not match the key');
}

/** A token whose claims hold (`checkSasTokenClaims`), ready to have keys tested against its signature. */
export interface SasTokenClaims {
  readonly parsed: ParsedSasToken;
  /** The signature's bytes. */
  readonly presented: Buffer;
  /** The text the signature is over: `sr` as in the token, a newline, `se`. */
  readonly signed: string;
}

/**
 * The checks of `verifySasToken` that do not depend on the key, in its order and with its errors
 * (format, expiry, resource, key name): throws `SasTokenError`, else the token to test keys
 * against with `sasTokenSignedBy`.
 *
 * Why apart: a device of an enrollment group is attested by trying each group's derived key in
 * turn, and `verifySasToken` per key parsed the token again and threw (an Error with its stack
 * trace) for every group before the device's own: most of the attestation of a device in the second
 * group (issue #13, the emulator's custom path in the bench).
 */
export function checkSasTokenClaims(token: string, options: Omit<VerifySasOptions, 'keys'>): SasTokenClaims {
  const parsed = parseSasToken(token);
  const nowSeconds = (options.now ?? new Date()).getTime() / 1000;
  if (parsed.expiresAt <= nowSeconds) {
    throw new SasTokenError('expired', `token expired at ${new Date(parsed.expiresAt * 1000).toISOString()}`);
  }
  if (parsed.resource.toLowerCase() !== options.expectedResource.toLowerCase()) {
    // The token's own sr is not echoed: error messages reach logs, and no part of a token may.
    throw new SasTokenError('resource-mismatch', `token is not for "${options.expectedResource}"`);
  }
  if (
    options.expectedKeyName !== undefined &&
    parsed.keyName !== undefined &&
    parsed.keyName !== options.expectedKeyName
  ) {
    throw new SasTokenError('key-name-mismatch', `token skn is not "${options.expectedKeyName}"`);
  }
  return {
    parsed,
    presented: Buffer.from(parsed.signature, 'base64'),
    signed: `${parsed.rawResource}\n${parsed.expiresAt}`,
  };
}

/**
 * Whether `key` (base64) signed the token, compared in constant time. Throws `KeyError` for a key
 * that is not base64, as `verifySasToken` does.
 */
export function sasTokenSignedBy(claims: SasTokenClaims, key: string): boolean {
  const expected = hmacSha256(decodeBase64Key(key), claims.signed);
  return claims.presented.length === expected.length && timingSafeEqual(claims.presented, expected);
}
