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

/**
 * Constant-time comparison that does not leak the key's length: both keys are laid out in
 * fixed-size slots (two bytes of length, the UTF-8 bytes, zero padding) and the whole slots are
 * compared with `timingSafeEqual`. It replaced a SHA-256 of each presented key, which was still 4%
 * of the host's CPU per request under load (issue #13); the slot is reused, nothing is allocated.
 * Keys longer than a slot (never generated, rare by choice) are compared by their SHA-256 digests.
 */
export function keysEqual(a: string, b: string): boolean {
  if (b.length > SLOT_BYTES / 3 && Buffer.byteLength(b, 'utf8') > SLOT_BYTES) {
    return timingSafeEqual(sha256(a), sha256(b));
  }
  const expected = expectedSlot(b);
  // A presented key that does not fit cannot be the expected one; the comparison runs all the same.
  const fits = fillSlot(presentedSlot, a);
  return timingSafeEqual(fits ? presentedSlot : expected, expected) && fits;
}

const SLOT_BYTES = 256;
const presentedSlot = Buffer.alloc(2 + SLOT_BYTES);

/** Writes `text` into `slot` as length + bytes + zeros; false when it is longer than the slot. */
function fillSlot(slot: Buffer, text: string): boolean {
  const length = Buffer.byteLength(text, 'utf8');
  if (length > SLOT_BYTES) return false;
  slot.writeUInt16BE(length, 0);
  slot.write(text, 2, 'utf8');
  slot.fill(0, 2 + length);
  return true;
}

function sha256(text: string): Buffer {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}

// The host compares every request against the same key: its slot is filled once.
let lastExpected: string | undefined;
const lastExpectedSlot = Buffer.alloc(2 + SLOT_BYTES);
function expectedSlot(expected: string): Buffer {
  if (expected !== lastExpected) {
    fillSlot(lastExpectedSlot, expected);
    lastExpected = expected;
  }
  return lastExpectedSlot;
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
  // The host masks each request's path for its HTTP line, and a caller sends the same one again and
  // again: the last answer is kept (the replace was 0.2 µs of every request at info level).
  if (pathAndQuery !== lastUnmasked) {
    lastMasked = pathAndQuery.replace(/([?&]code=)[^&#]*/gi, '$1****');
    lastUnmasked = pathAndQuery;
  }
  return lastMasked;
}

let lastUnmasked: string | undefined;
let lastMasked = '';
