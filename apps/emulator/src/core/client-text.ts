/** Longest client-supplied value written into a log line or an error message. */
export const MAX_LOGGED_CLIENT_VALUE = 128;

/** Control characters (C0 and DEL), written as `\uXXXX`. */
function escapeControls(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : char;
  }
  return out;
}

/**
 * A value the client chose (URL, MQTT client id, username, topic, registration id), made safe for a
 * log line or an error message: at most `max` characters, the rest counted, control characters
 * escaped so that one value cannot forge log lines. Never pass a token or a key through it: those
 * are not logged at all.
 */
export function clip(value: string, max = MAX_LOGGED_CLIENT_VALUE): string {
  if (value.length <= max) return escapeControls(value);
  return `${escapeControls(value.slice(0, max))}…(${value.length - max} more characters)`;
}

/** A URL with its query masked as `?****` (as webhook URLs are shown): a query may carry a token's `sig=` or a function key's `code=`. */
export function maskUrlQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?****`;
}

/** A request target the client chose, for a log line or an error message: query masked, then clipped like every client value. */
export function clipUrl(url: string): string {
  return clip(maskUrlQuery(url));
}
