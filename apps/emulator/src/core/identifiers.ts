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
