import { describe, expect, it } from 'vitest';
import {
  checkFunctionKey,
  functionKeyProblem,
  generateFunctionKey,
  keysEqual,
  maskCode,
  presentedKey,
} from './function-key.js';

describe('presentedKey', () => {
  it('reads the x-functions-key header first, then the code query parameter', () => {
    expect(presentedKey('header-key', new URLSearchParams('code=query-key'))).toBe('header-key');
    expect(presentedKey(undefined, new URLSearchParams('code=query-key'))).toBe('query-key');
    expect(presentedKey('', new URLSearchParams('code=q'))).toBe('q');
    expect(presentedKey(null, new URLSearchParams('other=1'))).toBeUndefined();
    expect(presentedKey(undefined, new URLSearchParams('code='))).toBeUndefined();
  });
});

describe('checkFunctionKey', () => {
  it('lets anyone call anonymous functions', () => {
    expect(checkFunctionKey('anonymous', undefined, 'k')).toEqual({ ok: true });
  });

  it('needs the right key at function and admin level', () => {
    for (const level of ['function', 'admin'] as const) {
      expect(checkFunctionKey(level, 'k', 'k')).toEqual({ ok: true });
      expect(checkFunctionKey(level, undefined, 'k')).toEqual({ ok: false, reason: 'missing' });
      expect(checkFunctionKey(level, 'K', 'k')).toEqual({ ok: false, reason: 'invalid' });
      expect(checkFunctionKey(level, 'kk', 'k')).toEqual({ ok: false, reason: 'invalid' });
    }
  });
});

describe('keys', () => {
  it('compares keys of any length', () => {
    expect(keysEqual('abc', 'abc')).toBe(true);
    expect(keysEqual('abc', 'abcd')).toBe(false);
    expect(keysEqual('', 'a')).toBe(false);
  });

  it('tells keys apart that differ only in length, padding bytes, non-ASCII text or beyond the slot', () => {
    expect(keysEqual('a\u0000', 'a')).toBe(false);
    expect(keysEqual('a', 'a\u0000')).toBe(false);
    expect(keysEqual('ü', 'ü')).toBe(true);
    expect(keysEqual('ü', 'u')).toBe(false);
    const long = 'k'.repeat(300);
    expect(keysEqual(long, long)).toBe(true);
    expect(keysEqual(`${long}x`, long)).toBe(false);
    expect(keysEqual(long, 'k'.repeat(256))).toBe(false);
    expect(keysEqual('k'.repeat(256), 'k'.repeat(256))).toBe(true);
    expect(keysEqual('k'.repeat(257), 'k'.repeat(256))).toBe(false);
    // The slot is reused: an earlier, longer key leaves nothing behind that a shorter one could match.
    expect(keysEqual('abcdef', 'abc')).toBe(false);
    expect(keysEqual('abc', 'abc')).toBe(true);
  });

  it('generates distinct URL-safe keys', () => {
    const a = generateFunctionKey();
    const b = generateFunctionKey();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(encodeURIComponent(a)).toBe(a);
  });

  it('names what is wrong with an unusable key', () => {
    expect(functionKeyProblem('good-key==')).toBeUndefined();
    expect(functionKeyProblem('')).toBe('the function key is empty');
    expect(functionKeyProblem('two words')).toBe('the function key must be printable ASCII without spaces');
  });

  it('masks the code parameter in logged URLs', () => {
    expect(maskCode('/api/allocate?code=secret&x=1')).toBe('/api/allocate?code=****&x=1');
    expect(maskCode('/api/allocate?x=1&CODE=secret')).toBe('/api/allocate?x=1&CODE=****');
    expect(maskCode('/api/allocate')).toBe('/api/allocate');
  });

  it('masks each path by its own text when paths repeat and alternate (the last answer is kept)', () => {
    const paths = ['/api/a?code=one', '/api/a?code=one', '/api/a?code=two&code=3', '/api/a', '/api/a?code=one'];
    expect(paths.map(maskCode)).toEqual([
      '/api/a?code=****',
      '/api/a?code=****',
      '/api/a?code=****&code=****',
      '/api/a',
      '/api/a?code=****',
    ]);
  });
});
