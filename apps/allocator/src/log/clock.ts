let lastMs = Number.NaN;
let lastIso = '';

/**
 * `new Date().toISOString()`, built once per millisecond: a busy local host stamps six lines per
 * request, thousands of requests a second, and the timestamps only resolve milliseconds anyway.
 */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
