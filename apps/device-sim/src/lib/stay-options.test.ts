import { describe, expect, it } from 'vitest';
import { checkStayOptions, parseMethodAnswer } from './stay-options.js';

describe('parseMethodAnswer', () => {
  it.each([
    ['reboot=200', { name: 'reboot', answer: { status: 200 } }],
    ['reboot=200:{"a":[1,2]}', { name: 'reboot', answer: { status: 200, payload: { a: [1, 2] } } }],
    ['getValue=200:42', { name: 'getValue', answer: { status: 200, payload: 42 } }],
    // Only the first '=' and ':' split: a payload may hold both.
    ['setUrl=200:"https://x/?a=b"', { name: 'setUrl', answer: { status: 200, payload: 'https://x/?a=b' } }],
    ['quiet=none', { name: 'quiet', answer: 'no-answer' }],
    ['*=501', { name: '*', answer: { status: 501 } }],
  ])('%s', (text, expected) => {
    expect(parseMethodAnswer(text)).toEqual(expected);
  });

  it.each([
    ['=200', 'is not name=status'],
    ['a=', 'the status must be a whole number'],
    ['a=-1', 'the status must be a whole number'],
    ['a=2147483648', 'the status must be a whole number'],
    ['a=200:', 'is not JSON'],
    ['a b=200', 'is not a method name'],
    [`${'m'.repeat(101)}=200`, 'is not a method name'],
  ])('refuses %s', (text, message) => {
    expect(() => parseMethodAnswer(text)).toThrow(message);
  });
});

describe('checkStayOptions', () => {
  it('accepts answers and an interval', () => {
    expect(() =>
      checkStayOptions({ methods: { a: { status: 200, payload: null }, b: 'no-answer' }, telemetryIntervalMs: 1000 }),
    ).not.toThrow();
  });

  it.each([
    [{ methods: { a: { status: 0 } } }, 'methods'],
    [{ methods: { a: { status: 1.5 } } }, 'methods'],
    [{ methods: { a: 'later' as never } }, 'methods'],
    [{ methods: { 'a#': { status: 200 } } }, 'methods'],
    [{ telemetryIntervalMs: 10 }, 'telemetryIntervalMs'],
    [{ telemetryIntervalMs: Number.NaN }, 'telemetryIntervalMs'],
  ])('refuses %j naming %s', (stay, field) => {
    expect(() => checkStayOptions(stay)).toThrow(expect.objectContaining({ name: 'InvalidOptionError', field }));
  });
});
