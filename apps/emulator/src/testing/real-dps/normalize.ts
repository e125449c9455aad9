import { readFileSync } from 'node:fs';
import { COSMOS_ETAG_PATTERN, decodeRegistrationEtag } from '@dpskit/contracts';

/** One real DPS capture (see README.md in this folder). */
export interface Capture {
  source: string;
  situation: string;
  transport: 'mqtt' | 'https' | 'any';
  topic?: string;
  status?: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
  /** Dotted paths the publisher blanked out: only their presence and position are compared. */
  redacted?: string[];
  /** Only the fields present in `body` are compared. */
  partial?: boolean;
}

export function loadCapture(name: string): Capture {
  return JSON.parse(readFileSync(new URL(`./${name}.json`, import.meta.url), 'utf8')) as Capture;
}

/** Values that legitimately differ between two answers to the same situation: ids. */
const ID_KEYS = new Set([
  'operationId',
  'registrationId',
  'deviceId',
  'enrollmentGroupId',
  'assignedHub',
  'trackingId',
]);
/** Timestamps in records: Json.NET's form, up to 7 fractional digits, trailing zeros trimmed. */
const RECORD_TIME_KEYS = new Set(['createdDateTimeUtc', 'lastUpdatedDateTimeUtc']);
const TRIMMED_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{0,6}[1-9])?Z$/;
const SEVEN_DIGIT_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;
/** The attestation block names its kind; the emulator serves symmetric keys where a capture may show X.509. */
const ATTESTATION_KEYS = new Set(['x509', 'symmetricKey', 'tpm']);
const OPERATION_ID = /^\d+\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Replaces ids, keys and times by placeholders that still say whether their *form* is DPS's, and
 * keeps everything else (keys, their order, status words, codes, messages) as is. A value in the
 * wrong form stays visible, e.g. `<not a DPS record timestamp: 2026-…0000Z>`.
 */
export function normalize(value: unknown, redacted: readonly string[] = [], path = ''): unknown {
  if (Array.isArray(value)) return value.map((item, i) => normalize(item, redacted, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    const name = ATTESTATION_KEYS.has(key) ? '<attestation>' : key;
    out[name] = redacted.includes(childPath) ? '<redacted>' : normalizeField(key, child, redacted, childPath);
  }
  return out;
}

function normalizeField(key: string, value: unknown, redacted: readonly string[], path: string): unknown {
  if (typeof value !== 'string') return normalize(value, redacted, path);
  if (key === 'operationId') return OPERATION_ID.test(value) ? '<operationId>' : `<not an operation id: ${value}>`;
  if (key === 'trackingId') return UUID.test(value) ? '<trackingId>' : `<not a uuid: ${value}>`;
  if (ID_KEYS.has(key)) return `<${key}>`;
  if (RECORD_TIME_KEYS.has(key)) {
    return TRIMMED_TIMESTAMP.test(value) ? '<record timestamp>' : `<not a DPS record timestamp: ${value}>`;
  }
  if (key === 'timestampUtc') {
    return SEVEN_DIGIT_TIMESTAMP.test(value) ? '<error timestamp>' : `<not a DPS error timestamp: ${value}>`;
  }
  if (key === 'webhookUrl') {
    // The Function app's address differs; DPS masks the query (the function key) as `?****`.
    return /^https?:\/\/[^?]+\?\*\*\*\*$/.test(value) ? '<webhook url>?****' : `<not a masked webhook url: ${value}>`;
  }
  if (key === 'etag') {
    if (decodeRegistrationEtag(value)) return '<base64 of a quoted Cosmos etag>';
    if (COSMOS_ETAG_PATTERN.test(value)) return '<quoted Cosmos etag>';
    return `<not a DPS etag: ${value}>`;
  }
  return value;
}

/** The fields of `actual` that `expected` has, at every level, in `expected`'s order (for partial captures). */
export function pick(actual: unknown, expected: unknown): unknown {
  if (expected === null || typeof expected !== 'object' || actual === null || typeof actual !== 'object') return actual;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) {
    out[key] = pick((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key]);
  }
  return out;
}

/** Normalized JSON text of a capture's body (key order included), and of an answer to compare with it. */
export function comparable(capture: Capture, actual: unknown): { real: string; emulator: string } {
  const redacted = capture.redacted ?? [];
  const mine = capture.partial ? pick(actual, capture.body) : actual;
  return {
    real: JSON.stringify(normalize(capture.body, redacted), null, 1),
    emulator: JSON.stringify(normalize(mine, redacted), null, 1),
  };
}
