/** Longest client-supplied value written into a log line or an error message. */
export const MAX_LOGGED_CLIENT_VALUE = 128;

/**
 * A value the client chose (URL, MQTT client id, username, topic, registration id), made safe for a
 * log line or an error message: at most `max` characters, the rest counted, control characters
 * escaped so that one value cannot forge log lines. Never pass a token or a key through it: those
 * are not logged at all.
 */
export function clip(value: string, max = MAX_LOGGED_CLIENT_VALUE): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
  const escape = (text: string) =>
    text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (value.length <= max) return escape(value);
  return `${escape(value.slice(0, max))}…(${value.length - max} more characters)`;
}
