import crypto, { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthLevel } from '../registration/http-function.js';

export type KeyCheck = { ok: true } | { ok: false; reason: 'missing' | 'invalid' };

/**
 * The key a caller presents, as the Functions host reads it: the `x-functions-key` header first,
 * else the `code` query parameter.
 */
export function presentedKey(header: string | null | undefined, query: URLSearchParams): string | undefined {
  if (header !== null && header !== undefined && header !== '') return header;
  const code = query.get('code');
  return code === null || code === '' ? undefined : code;
}

/**
 * `anonymous` functions take any caller; `function` and `admin` functions need the key. The local
 * host has a single key that stands for both the function key and the master key.
 */
export function checkFunctionKey(authLevel: AuthLevel, presented: string | undefined, expected: string): KeyCheck {
  if (authLevel === 'anonymous') return { ok: true };
  if (presented === undefined) return { ok: false, reason: 'missing' };
  return keysEqual(presented, expected) ? { ok: true } : { ok: false, reason: 'invalid' };
}

/** Constant-time comparison; hashing first makes the lengths equal without leaking the key length. */
export function keysEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), expectedDigest(b));
}

/**
 * One-shot `crypto.hash` (Node 20.12+) where there is one: every request's key is hashed, and
 * building a Hash object for it cost about twice as much (a few percent of the host's CPU per
 * request in the issue #13 profile). A default import, because a named import of a function that
 * an older Node 20 lacks would fail to link.
 */
const oneShot: typeof crypto.hash | undefined = typeof crypto.hash === 'function' ? crypto.hash : undefined;
function sha256(text: string): Buffer {
  return oneShot ? oneShot('sha256', text, 'buffer') : crypto.createHash('sha256').update(text, 'utf8').digest();
}

// The host compares every request against the same key: its digest is computed once.
let lastExpected: string | undefined;
let lastExpectedDigest: Buffer | undefined;
function expectedDigest(expected: string): Buffer {
  if (expected !== lastExpected || lastExpectedDigest === undefined) {
    lastExpectedDigest = sha256(expected);
    lastExpected = expected;
  }
  return lastExpectedDigest;
}

/** A fresh key: 32 random bytes in base64url, so it needs no escaping in `?code=`. */
export function generateFunctionKey(): string {
  return randomBytes(32).toString('base64url');
}

/** Keys are used in URLs and headers: printable ASCII without spaces. */
export function functionKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'the function key is empty';
  if (!/^[\x21-\x7e]+$/.test(key)) return 'the function key must be printable ASCII without spaces';
  return undefined;
}

/** The webhook URL as logs should show it: the key masked the way DPS echoes webhook URLs. */
export function maskCode(pathAndQuery: string): string {
  return pathAndQuery.replace(/([?&]code=)[^&#]*/gi, '$1****');
}
