import { randomUUID } from 'node:crypto';

/**
 * Operation ids in DPS's format, `4.<16 hex>.<uuid>`: the Node SDK pastes them unencoded into
 * MQTT topics and URL paths, so they must never contain `& = # + /` or `?`.
 */
export function createOperationId(): string {
  // randomUUID draws from a cached pool of random bytes; randomBytes(8) was a system call per
  // registration. The 16 hex digits come from a second UUID less its fixed version nibble.
  const hex = randomUUID().replace(/-/g, '');
  return `4.${hex.slice(0, 12)}${hex.slice(13, 17)}.${randomUUID()}`;
}

const OPERATION_ID = /^\d+\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isOperationId(value: string): boolean {
  return OPERATION_ID.test(value);
}
