import { describe, expect, it } from 'vitest';
import { parseDeviceRegistrationJson } from '../registration/status.js';
import { DEFAULT_MAX_JSON_DEPTH, decodeJson, jsonNestingDepth } from './json-bounds.js';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('jsonNestingDepth', () => {
  it.each([
    ['1', 0],
    ['{}', 1],
    ['{"a":[1,{"b":{}}]}', 4],
    ['{"a":"[[[[{{{{"}', 1],
    ['{"a":"\\\\\\"[[["}', 1],
    [nested(100), 100],
  ])('%s is %i deep', (text, depth) => {
    expect(jsonNestingDepth(text)).toBe(depth);
  });

  it('stops counting past the limit', () => {
    expect(jsonNestingDepth(nested(40_000), 10)).toBe(11);
  });
});

describe('decodeJson', () => {
  it('refuses 40,000 levels (80 KB) without overflowing anything, and names the bound', () => {
    const result = decodeJson(`{"registrationId":"x","payload":{"a":${nested(40_000)}}}`);
    expect(result).toEqual({ ok: false, reason: `it is nested more than ${DEFAULT_MAX_JSON_DEPTH} levels deep` });
  });

  it('accepts the bound itself and honours a configured one', () => {
    expect(decodeJson(nested(DEFAULT_MAX_JSON_DEPTH)).ok).toBe(true);
    expect(decodeJson(nested(DEFAULT_MAX_JSON_DEPTH + 1)).ok).toBe(false);
    expect(decodeJson(nested(3), { maxDepth: 2 }).ok).toBe(false);
  });

  it('judges by depth, not by the number of brackets, whichever kinds nest', () => {
    const siblings = `[${Array.from({ length: 1000 }, () => '{"a":[]}').join(',')}]`;
    expect(decodeJson(siblings).ok).toBe(true);
    expect(decodeJson(`{"a":"${'['.repeat(500)}"}`).ok).toBe(true);
    const mixed = (pairs: number) => `${'{"a":['.repeat(pairs)}1${']}'.repeat(pairs)}`;
    expect(decodeJson(mixed(DEFAULT_MAX_JSON_DEPTH / 2)).ok).toBe(true);
    expect(decodeJson(mixed(DEFAULT_MAX_JSON_DEPTH / 2 + 1)).ok).toBe(false);
  });

  it('reaches the contracts parsers: a deep register body is an issue at the root', () => {
    const parsed = parseDeviceRegistrationJson(`{"registrationId":"x","payload":{"a":${nested(40_000)}}}`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).toContain('nested more than 64 levels deep');
  });
});
