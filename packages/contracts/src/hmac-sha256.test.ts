import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHmacSha256Base64, hmacSha256 } from './hmac-sha256.js';

const TUTORIAL_GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const nodeHmac = (key: Buffer, message: string): string =>
  createHmac('sha256', key).update(message, 'utf8').digest('base64');

// Messages of every kind the one-shot path must encode as createHmac does: empty, ASCII, multi-byte
// UTF-8, surrogate pairs, a lone surrogate (U+FFFD in UTF-8), and lengths around its 128-unit limit.
const MESSAGES = [
  '',
  'a',
  'contoso-toaster-007',
  'Contoso-Toaster-007',
  'é',
  'ä-ö-ü-ß',
  '€uro',
  'device-😀',
  '\ud800',
  'x\udc00y',
  '\u0000\u007f\u0080\u00ff',
  'a'.repeat(55),
  'a'.repeat(56),
  'a'.repeat(64),
  'a'.repeat(127),
  'a'.repeat(128),
  'a'.repeat(129),
  '€'.repeat(128),
  '😀'.repeat(64),
  '😀'.repeat(65),
  'b'.repeat(10_000),
];

describe('createHmacSha256Base64', () => {
  it("derives the tutorial's device key", () => {
    const hmac = createHmacSha256Base64(Buffer.from(TUTORIAL_GROUP_KEY, 'base64'));
    expect(hmac('contoso-toaster-007')).toBe('NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=');
    expect(hmac('contoso-heatpump-088')).toBe('NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=');
  });

  // Keys shorter than, equal to and longer than SHA-256's 64-byte block (a longer key is hashed first).
  it.each([0, 1, 16, 32, 63, 64, 65, 100, 200])('gives createHmac’s result for a %i-byte key', (length) => {
    const key = randomBytes(length);
    const hmac = createHmacSha256Base64(key);
    for (const message of MESSAGES) expect(hmac(message), JSON.stringify(message)).toBe(nodeHmac(key, message));
  });

  it('gives createHmac’s result for many messages in any order of length (its buffers are reused)', () => {
    const key = Buffer.from(TUTORIAL_GROUP_KEY, 'base64');
    const hmac = createHmacSha256Base64(key);
    for (let i = 0; i < 2_000; i++) {
      const message = `${'é'.repeat(i % 7)}id-${i}-${'z'.repeat((i * 37) % 131)}`;
      expect(hmac(message)).toBe(nodeHmac(key, message));
    }
  });

  it('keeps no state between keys: two functions interleaved', () => {
    const a = randomBytes(64);
    const b = randomBytes(64);
    const hmacA = createHmacSha256Base64(a);
    const hmacB = createHmacSha256Base64(b);
    for (const message of MESSAGES.slice(0, 8)) {
      expect(hmacA(message)).toBe(nodeHmac(a, message));
      expect(hmacB(message)).toBe(nodeHmac(b, message));
    }
  });
});

describe('hmacSha256', () => {
  // Keys shorter than, equal to and longer than the block; messages past its own buffers included.
  it.each([0, 1, 16, 32, 63, 64, 65, 100])('gives createHmac’s bytes for a %i-byte key', (length) => {
    const key = randomBytes(length);
    for (const message of [...MESSAGES, 'c'.repeat(341), 'c'.repeat(342), '€'.repeat(400)]) {
      expect(hmacSha256(key, message).toString('base64'), JSON.stringify(message)).toBe(nodeHmac(key, message));
    }
  });

  it('gives createHmac’s bytes call after call with other keys and lengths (its buffers are shared)', () => {
    for (let i = 0; i < 500; i++) {
      const key = randomBytes(i % 3 === 0 ? 32 : 64);
      const message = `0ne00000A0A/registrations/${'é'.repeat(i % 5)}dev-${i}-${'z'.repeat((i * 37) % 300)}\n${1_700_000_000 + i}`;
      expect(hmacSha256(key, message).toString('base64')).toBe(nodeHmac(key, message));
    }
  });
});
