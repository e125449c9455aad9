/**
 * Deepest nesting of objects and arrays accepted in untrusted JSON. JSON.parse itself copes with
 * deep input, but everything after it recurses (schema validation, JSON.stringify when the value is
 * forwarded or stored, structuredClone): 40,000 levels overflow the stack there. DPS documents no
 * limit; 64 is far beyond any real payload, twin or allocation answer (device twins allow 10 levels).
 */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface JsonBounds {
  /** Deepest nesting of objects and arrays (default `DEFAULT_MAX_JSON_DEPTH`). */
  maxDepth?: number;
}

/**
 * The nesting depth of JSON text, counted without recursion and without parsing: brackets outside
 * strings. Stops counting at `limit + 1`, so a huge input costs one pass at most.
 */
export function jsonNestingDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return deepest;
}

export type JsonDecodeResult = { ok: true; value: unknown } | { ok: false; reason: string };

/** `JSON.parse` with a depth bound checked first; `reason` is safe to show (it quotes no input). */
export function decodeJson(text: string, bounds: JsonBounds = {}): JsonDecodeResult {
  const maxDepth = bounds.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (openingBracketsExceed(text, maxDepth) && jsonNestingDepth(text, maxDepth) > maxDepth) {
    return { ok: false, reason: `it is nested more than ${maxDepth} levels deep` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Whether `text` has more than `limit` `{` and `[` in all: nesting can be no deeper than that, so
 * below it the character-by-character depth scan is skipped. Counted with indexOf (native), which
 * made decoding an allocation request a third cheaper: most bodies have a few dozen brackets.
 */
function openingBracketsExceed(text: string, limit: number): boolean {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      count += 1;
      if (count > limit) return true;
    }
  }
  return false;
}
