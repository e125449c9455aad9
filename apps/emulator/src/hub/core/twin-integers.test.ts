import { describe, expect, it } from 'vitest';
import { outOfRangeIntegers, TWIN_INTEGER_MAX, TWIN_INTEGER_MIN } from './twin-integers.js';

describe("twin integers outside IoT Hub's range, read from the text", () => {
  it('is -2^52 to 2^52 - 1, as documented', () => {
    expect(TWIN_INTEGER_MIN).toBe(-(2n ** 52n));
    expect(TWIN_INTEGER_MAX).toBe(2n ** 52n - 1n);
  });

  it('finds the integer literals past either end, with their paths', () => {
    const text = '{"a":{"b":9007199254740993},"c":[1,4503599627370496],"d":-4503599627370497}';
    expect(outOfRangeIntegers(text)).toEqual([
      // JSON.parse makes this 9007199254740992: the literal is what was sent.
      { path: 'a.b', literal: '9007199254740993' },
      { path: 'c[1]', literal: '4503599627370496' },
      { path: 'd', literal: '-4503599627370497' },
    ]);
  });

  it('takes both ends of the range, floats, and long digit runs in strings and keys', () => {
    const text = JSON.stringify({
      max: 4503599627370495,
      min: -4503599627370496,
      s: '123456789012345678901234567890',
      '123456789012345678901234567890': 1,
    }).replace('}', ',"f":4503599627370496.0,"e":12345678901234567e2,"g":-1.5E+300}');
    expect(JSON.parse(text)).toHaveProperty('g', -1.5e300);
    expect(outOfRangeIntegers(text)).toEqual([]);
  });

  it('follows escaped keys, whitespace, arrays of objects and members after a nested object', () => {
    const text =
      '{ "a\\"b" : [ [0], [1, {"x": [ 99999999999999999 ]}] ], "o": {"p": {"q": 1}}, "r" :\n-99999999999999999 }';
    expect(outOfRangeIntegers(text)).toEqual([
      { path: 'a"b[1][1].x[0]', literal: '99999999999999999' },
      { path: 'r', literal: '-99999999999999999' },
    ]);
    expect(outOfRangeIntegers('[{"x":1},{"y":12345678901234567890}]')).toEqual([
      { path: '[1].y', literal: '12345678901234567890' },
    ]);
    expect(outOfRangeIntegers('12345678901234567890')).toEqual([{ path: '', literal: '12345678901234567890' }]);
  });
});
