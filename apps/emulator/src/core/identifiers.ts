import { randomBytes, randomUUID } from 'node:crypto';

/**
 * Operation ids in DPS's format, `4.<16 hex>.<uuid>`: the Node SDK pastes them unencoded into
 * MQTT topics and URL paths, so they must never contain `& = # + /` or `?`.
 */
export function createOperationId(): string {
  return `4.${randomBytes(8).toString('hex')}.${randomUUID()}`;
}

const OPERATION_ID = /^\d+\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isOperationId(value: string): boolean {
  return OPERATION_ID.test(value);
}

/**
 * DPS timestamps carry seven fractional digits (.NET ticks), e.g. `2021-06-30T06:52:07.7289225Z`.
 * JavaScript has milliseconds, so the last four digits are zero.
 */
export function dpsTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** Registration etags are base64 of a quoted Cosmos-style id, as the real service sends them. */
export function createRegistrationEtag(): string {
  return Buffer.from(`"${randomUUID()}"`, 'utf8').toString('base64');
}

/** Enrollment etags are the quoted id itself (with the quotes), as DPS embeds them in webhook bodies. */
export function createEnrollmentEtag(seed: string): string {
  const hex = Buffer.from(seed, 'hex').toString('hex').padEnd(32, '0').slice(0, 32);
  return `"${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}"`;
}
