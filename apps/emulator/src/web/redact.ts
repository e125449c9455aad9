import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';

/** What replaces a secret in everything the web view sends. */
export const MASK = '****';

/** Shorter values are not treated as secrets (masking `a` everywhere would garble the page). */
const MIN_SECRET_LENGTH = 8;

/**
 * The secrets the emulator knows: enrollment keys, the values and user info of webhook URLs'
 * (the `?code=` function key), the service API's policy keys. The page's views leave them out by
 * construction; `redact` is the second line, applied to every byte the web view sends.
 */
export function collectSecrets(
  enrollments: { groups: readonly EnrollmentGroup[]; individuals: readonly IndividualEnrollment[] },
  policyKeys: readonly string[] = [],
): string[] {
  const secrets = new Set<string>();
  const add = (value: string | undefined) => {
    if (value && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
  };
  for (const enrollment of [...enrollments.groups, ...enrollments.individuals]) {
    add(enrollment.attestation.symmetricKey?.primaryKey);
    add(enrollment.attestation.symmetricKey?.secondaryKey);
    for (const part of webhookUrlSecrets(enrollment.customAllocationDefinition?.webhookUrl)) add(part);
  }
  for (const key of policyKeys) add(key);
  // Longest first: a secret containing another is replaced whole.
  return [...secrets].sort((a, b) => b.length - a.length);
}

function webhookUrlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  const parts: string[] = [];
  const q = url.indexOf('?');
  if (q !== -1) {
    const query = url.slice(q + 1).split('#')[0] ?? '';
    parts.push(query);
    for (const pair of query.split('&')) {
      const value = pair.slice(pair.indexOf('=') + 1);
      parts.push(value);
      try {
        parts.push(decodeURIComponent(value));
      } catch {
        // Not percent-encoded text: the raw value is already listed.
      }
    }
  }
  try {
    const { username, password } = new URL(url);
    parts.push(username, password, decodeURIComponent(password));
  } catch {
    // Not a URL: nothing more to find in it.
  }
  return parts;
}

/** Patterns of secrets the emulator cannot list: a device's SAS token, connection-string keys, `code=` values. */
const PATTERNS: readonly [RegExp, string][] = [
  [/SharedAccessSignature\s+[^"\\\s]+/g, `SharedAccessSignature ${MASK}`],
  [/([?&]sig=)[^&"\\\s]+/g, `$1${MASK}`],
  [/(SharedAccessKey=)[^;"\\\s]+/g, `$1${MASK}`],
  [/([?&]code=)(?!\*\*\*\*)[^&#"\\\s]+/gi, `$1${MASK}`],
];

/** Replaces every known secret and every secret-shaped value in `text`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.replaceAll(secret, MASK);
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A webhook URL for display: no user info, the query masked as DPS masks it. */
export function displayWebhookUrl(url: string): string {
  let shown = url;
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = '';
      parsed.password = '';
      shown = parsed.toString();
    }
  } catch {
    // Shown as configured, query masked below.
  }
  const q = shown.indexOf('?');
  return q === -1 ? shown : `${shown.slice(0, q)}?${MASK}`;
}
