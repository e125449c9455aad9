import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeBase64Key, hmacSha256Base64, KeyError } from './keys.js';

const PREFIX = 'SharedAccessSignature ';

/** The key name DPS expects in device registration tokens. */
export const REGISTRATION_KEY_NAME = 'registration';

/** `{idScope}/registrations/{registrationId}`: the resource a device registration token is for. */
export function registrationResource(idScope: string, registrationId: string): string {
  return `${idScope}/registrations/${registrationId}`;
}

/** `encodeURIComponent` that also escapes `!'()*`, as the Azure SDKs do. */
export function encodeUriComponentStrict(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface CreateSasOptions {
  resource: string;
  key: string;
  /** Expiry in seconds since the epoch. */
  expiresAt: number;
  keyName?: string;
  /**
   * Whether `sr` is URL-encoded (and signed in that form) as the C and Python SDKs and the docs
   * do. The Node SDK leaves it raw; DPS accepts both.
   */
  encodeResource?: boolean;
}

export function createSasToken(options: CreateSasOptions): string {
  const { resource, key, expiresAt, keyName = REGISTRATION_KEY_NAME, encodeResource = false } = options;
  if (!Number.isInteger(expiresAt) || expiresAt <= 0) {
    throw new KeyError('expiresAt', `expiresAt must be a positive integer of seconds, not ${expiresAt}`);
  }
  const sr = encodeResource ? encodeUriComponentStrict(resource) : resource;
  const sig = hmacSha256Base64(key, `${sr}\n${expiresAt}`);
  return `${PREFIX}sr=${sr}&sig=${encodeUriComponentStrict(sig)}&skn=${encodeUriComponentStrict(keyName)}&se=${expiresAt}`;
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

export interface ParsedSasToken {
  /** `sr` exactly as it appears in the token: the text the signature was computed over. */
  rawResource: string;
  /** `sr` URL-decoded. */
  resource: string;
  /** The signature, URL-decoded (base64). */
  signature: string;
  expiresAt: number;
  keyName: string | undefined;
}

export type SasFailureReason = 'malformed' | 'expired' | 'resource-mismatch' | 'signature-mismatch';

export class SasTokenError extends Error {
  override readonly name = 'SasTokenError';
  constructor(
    readonly reason: SasFailureReason,
    message: string,
  ) {
    super(message);
  }
}

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/** Parses `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]`, fields in any order. */
export function parseSasToken(token: string): ParsedSasToken {
  const trimmed = token.trim();
  if (!trimmed.startsWith(PREFIX)) {
    throw new SasTokenError('malformed', 'token does not start with "SharedAccessSignature "');
  }
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(PREFIX.length).trim().split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SasTokenError('malformed', `token field "${part}" is not name=value`);
    const name = part.slice(0, eq);
    if (fields.has(name)) throw new SasTokenError('malformed', `token field "${name}" appears twice`);
    fields.set(name, part.slice(eq + 1));
  }
  const rawResource = fields.get('sr');
  const rawSignature = fields.get('sig');
  const rawExpiry = fields.get('se');
  for (const [name, value] of [
    ['sr', rawResource],
    ['sig', rawSignature],
    ['se', rawExpiry],
  ] as const) {
    if (!value) throw new SasTokenError('malformed', `token has no ${name} field`);
  }
  const resource = safeDecode(rawResource as string);
  const signature = safeDecode(rawSignature as string);
  if (resource === null) throw new SasTokenError('malformed', 'token sr is not valid URL encoding');
  if (signature === null) throw new SasTokenError('malformed', 'token sig is not valid URL encoding');
  if (!/^\d+$/.test(rawExpiry as string)) throw new SasTokenError('malformed', 'token se is not a number of seconds');
  const skn = fields.get('skn');
  return {
    rawResource: rawResource as string,
    resource,
    signature,
    expiresAt: Number(rawExpiry),
    keyName: skn === undefined ? undefined : (safeDecode(skn) ?? skn),
  };
}

export interface VerifySasOptions {
  /** Candidate keys (primary, secondary); the token is valid if any of them signed it. */
  keys: readonly string[];
  /** The resource the token must be for, compared case-insensitively after URL-decoding. */
  expectedResource: string;
  now?: Date;
}

/**
 * Verifies a SAS token and returns the parsed token, or throws `SasTokenError` saying why not.
 * The signature is checked over `sr` exactly as it appears in the token, so raw (Node SDK) and
 * encoded (C, Python, docs) tokens both verify.
 */
export function verifySasToken(token: string, options: VerifySasOptions): ParsedSasToken & { keyIndex: number } {
  const parsed = parseSasToken(token);
  const nowSeconds = (options.now ?? new Date()).getTime() / 1000;
  if (parsed.expiresAt <= nowSeconds) {
    throw new SasTokenError('expired', `token expired at ${new Date(parsed.expiresAt * 1000).toISOString()}`);
  }
  if (parsed.resource.toLowerCase() !== options.expectedResource.toLowerCase()) {
    throw new SasTokenError(
      'resource-mismatch',
      `token is for "${parsed.resource}", not "${options.expectedResource}"`,
    );
  }
  const presented = Buffer.from(parsed.signature, 'base64');
  const signed = `${parsed.rawResource}\n${parsed.expiresAt}`;
  for (const [index, key] of options.keys.entries()) {
    const expected = createHmac('sha256', decodeBase64Key(key)).update(signed, 'utf8').digest();
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) {
      return { ...parsed, keyIndex: index };
    }
  }
  throw new SasTokenError('signature-mismatch', 'token signature does not match the key');
}
