/**
 * DPS's device API as the SDKs speak it over AMQP 1.0 (pure; no connection). What the Node SDK
 * (`azure-iot-provisioning-device-amqp`) sends: SASL PLAIN with username
 * `{idScope}/registrations/{registrationId}` and the SAS token as password; a receiver and a sender
 * link on that same address; request messages whose application property `iotdps-operation-type`
 * names the operation, with a `correlation_id` the answer must carry back.
 */
import type { DeviceApiResponse } from '../core/device-api.js';

export const OPERATION_TYPE = 'iotdps-operation-type';
export const OPERATION_ID = 'iotdps-operation-id';
export const FORCE_REGISTRATION = 'iotdps-forceRegistration';
export const RETRY_AFTER = 'retry-after';

export const OPERATION_TYPES = {
  register: 'iotdps-register',
  operationStatus: 'iotdps-get-operationstatus',
  statusLookup: 'iotdps-get-registration',
} as const;

export type AmqpRequest =
  | { kind: 'register'; forceRegistration: boolean }
  | { kind: 'operation-status'; operationId: string | undefined }
  | { kind: 'status-lookup' }
  | { kind: 'unknown'; operationType: string };

/** The operation a request message asks for, from its application properties. */
export function parseAmqpRequest(applicationProperties: Record<string, unknown> | undefined): AmqpRequest {
  const type = applicationProperties?.[OPERATION_TYPE];
  switch (type) {
    case OPERATION_TYPES.register:
      return { kind: 'register', forceRegistration: applicationProperties?.[FORCE_REGISTRATION] === true };
    case OPERATION_TYPES.operationStatus: {
      const id = applicationProperties?.[OPERATION_ID];
      return { kind: 'operation-status', operationId: typeof id === 'string' && id !== '' ? id : undefined };
    }
    case OPERATION_TYPES.statusLookup:
      return { kind: 'status-lookup' };
    default:
      return { kind: 'unknown', operationType: type === undefined ? '' : String(type) };
  }
}

export interface AmqpAddress {
  idScope: string;
  registrationId: string;
}

/** `{idScope}/registrations/{registrationId}`: the SASL username and both link addresses. */
export function parseAmqpAddress(value: string | undefined): AmqpAddress | undefined {
  const match = /^([^/]+)\/registrations\/([^/]+)$/.exec(value ?? '');
  if (!match) return undefined;
  return { idScope: match[1] ?? '', registrationId: match[2] ?? '' };
}

/** Whether a link address names the registration the connection authenticated as (ids compare case-insensitively, as DPS's). */
export function sameRegistration(address: AmqpAddress | undefined, authenticated: AmqpAddress): boolean {
  return (
    address !== undefined &&
    address.idScope.toLowerCase() === authenticated.idScope.toLowerCase() &&
    address.registrationId.toLowerCase() === authenticated.registrationId.toLowerCase()
  );
}

export interface AmqpErrorFields {
  condition: string;
  /** The DPS error body as JSON text, as real DPS puts it in its AMQP errors (azure-iot-sdk-c#815). */
  description: string;
  info?: Record<string, string>;
}

/**
 * The AMQP error a refused request's delivery is rejected with. The Node SDK retries only
 * `amqp:internal-error` and `com.microsoft:device-container-throttled` (reading `info['retry-after']`)
 * and fails on the others; it cannot take an error as an answer message, since it parses every
 * answer as a status body. Conditions as `azure-iot-amqp-base`'s translateError reads them.
 */
export function amqpErrorOf(response: DeviceApiResponse): AmqpErrorFields {
  const { status } = response;
  const condition =
    status === 401 || status === 403
      ? 'amqp:unauthorized-access'
      : status === 404
        ? 'amqp:not-found'
        : status === 405
          ? 'amqp:not-allowed'
          : status === 429
            ? 'com.microsoft:device-container-throttled'
            : status >= 500
              ? 'amqp:internal-error'
              : 'com.microsoft:argument-error';
  const error: AmqpErrorFields = { condition, description: JSON.stringify(response.body) };
  if (response.retryAfterSeconds !== undefined) error.info = { [RETRY_AFTER]: String(response.retryAfterSeconds) };
  return error;
}

/** The body of a request message: a data section (register), an AMQP string (polls send `''`), or bytes. */
export function requestBodyBytes(body: unknown): Uint8Array | string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return body;
  if (body && typeof body === 'object' && 'content' in body) {
    const content = (body as { content: unknown }).content;
    if (content instanceof Uint8Array) return content;
    if (typeof content === 'string') return content;
  }
  return '';
}
