import { describe, expect, it } from 'vitest';
import { clip, MAX_LOGGED_CLIENT_VALUE } from './client-text.js';

describe('clip', () => {
  it('keeps short values, bounds long ones and says how much was left out', () => {
    expect(clip('contoso-toaster-007')).toBe('contoso-toaster-007');
    const long = 'x'.repeat(18_500);
    expect(clip(long)).toBe(
      `${'x'.repeat(MAX_LOGGED_CLIENT_VALUE)}…(${18_500 - MAX_LOGGED_CLIENT_VALUE} more characters)`,
    );
  });

  it('escapes control characters, so one value cannot forge a log line', () => {
    expect(clip('a\nb\r\u0000')).toBe('a\\u000ab\\u000d\\u0000');
  });
});
