/**
 * IoT Hub's integer range for twin values: "Integers can have a minimum value of -4503599627370496
 * and a maximum value of 4503599627370495" (azure-docs iot-hub-devguide-device-twins, "Tags and
 * properties format"; -2^52 to 2^52 - 1). A JSON number written without a fraction or an exponent
 * is an integer (as Json.NET, IoT Hub's parser, reads it); `1e20` and `4503599627370496.0` are
 * floating-point numbers, which the range does not bound.
 */
export const TWIN_INTEGER_MIN = -4503599627370496n;
export const TWIN_INTEGER_MAX = 4503599627370495n;

/** An integer literal of a JSON text outside IoT Hub's range, and where it is. */
export interface OutOfRangeInteger {
  /** Its property path from the document's root: `a.b`, `list[2]` (`''` for a bare number). */
  path: string;
  /** The literal as written (`JSON.parse` would have rounded it past ±2^53). */
  literal: string;
}

/**
 * The integer literals of `text`, a JSON document that `JSON.parse` already took, that lie outside
 * IoT Hub's range. This has to read the text: once parsed, 9007199254740993 is 9007199254740992 and
 * an integer past 2^52 cannot be told from a float. Every such literal has at least 16 digits
 * (4503599627370496), so a text without 16 digits in a row (almost every one) is not scanned.
 * Hand-written rather than a big-number JSON parser (json-bigint, lossless-json) because only this
 * question is asked of the text, and the ordinary `JSON.parse` stays the parser of every request.
 */
export function outOfRangeIntegers(text: string): OutOfRangeInteger[] {
  if (!/\d{16}/.test(text)) return [];
  const found: OutOfRangeInteger[] = [];
  // The containers open at the cursor: an object's key (its current member's) or an array's index.
  const stack: Array<{ key: string | undefined } | { index: number }> = [];
  let expectKey = false;
  const path = () =>
    stack
      .map((frame, i) => ('index' in frame ? `[${frame.index}]` : `${i === 0 ? '' : '.'}${frame.key ?? ''}`))
      .join('');
  let i = 0;
  while (i < text.length) {
    const char = text[i] as string;
    if (char === '"') {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (expectKey && top && 'key' in top) {
        top.key = JSON.parse(text.slice(i, end)) as string;
        expectKey = false;
      }
      i = end;
    } else if (char === '{') {
      stack.push({ key: undefined });
      expectKey = true;
      i += 1;
    } else if (char === '[') {
      stack.push({ index: 0 });
      i += 1;
    } else if (char === '}' || char === ']') {
      stack.pop();
      i += 1;
    } else if (char === ',') {
      const top = stack.at(-1);
      if (top && 'index' in top) top.index += 1;
      else expectKey = true;
      i += 1;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = i;
      const match = NUMBER.exec(text);
      const literal = match?.[0] ?? char;
      if (match && match[1] === undefined && match[2] === undefined && literal.replace('-', '').length >= 16) {
        const value = BigInt(literal);
        if (value < TWIN_INTEGER_MIN || value > TWIN_INTEGER_MAX) found.push({ path: path(), literal });
      }
      i += literal.length;
    } else {
      i += 1; // whitespace, ':', true, false, null
    }
  }
  return found;
}

const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;

/** The index just past the JSON string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const char = text[i];
    if (char === '\\') i += 2;
    else if (char === '"') return i + 1;
    else i += 1;
  }
  return i;
}
