import rhea, { type Message } from 'rhea';
import { clip } from '../core/client-text.js';
import { type C2dAck, C2dError, type OutgoingC2d } from './core/c2d.js';
import { HubError } from './core/hub-service.js';
import { MODULE_C2D_REFUSAL } from './core/modules.js';

/** The address `azure-iothub`'s service client sends cloud-to-device messages to (its `_c2dEndpoint`). */
export const C2D_SERVICE_ADDRESS = '/messages/devicebound';

/** An AMQP error as a rejected delivery carries it. */
export interface AmqpRejection {
  condition: string;
  description: string;
}

/**
 * A cloud-to-device message as the service sends it over AMQP (`azure-iot-amqp-base`'s
 * `AmqpMessage.fromMessage`, `to` set by `azure-iothub`'s `Amqp.send`): `to`
 * `/devices/{URL-encoded id}/messages/devicebound`, `message_id` and `correlation_id` (a UUID as
 * AMQP's uuid type, else a string or number), `user_id` (bytes), `content_type`,
 * `content_encoding`, `absolute_expiry_time`, application properties with `iothub-ack`. Returns
 * the device and the message, or the rejection IoT Hub's AMQP endpoint gives (an argument error).
 */
export function c2dOfServiceMessage(
  message: Message,
): { ok: true; deviceId: string; outgoing: OutgoingC2d } | { ok: false; rejection: AmqpRejection } {
  const fail = (description: string) => ({
    ok: false as const,
    rejection: { condition: 'com.microsoft:argument-error', description },
  });
  const to = typeof message.to === 'string' ? message.to : undefined;
  if (to !== undefined && MODULE_C2D_ADDRESS.test(to)) return fail(MODULE_C2D_REFUSAL);
  const match = to === undefined ? null : /^\/devices\/([^/]+)\/messages\/devicebound$/i.exec(to);
  let deviceId: string | undefined;
  try {
    deviceId = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
  } catch {
    deviceId = undefined;
  }
  if (!deviceId)
    return fail(`The message's to must be /devices/{deviceId}/messages/devicebound, not ${clip(String(to ?? ''))}.`);
  const properties: Record<string, string> = {};
  let ack: C2dAck | undefined;
  for (const [name, value] of Object.entries(message.application_properties ?? {})) {
    const text = propertyText(value);
    if (text === undefined) return fail(`Application property ${clip(name)} must be a string.`);
    if (name === 'iothub-ack') {
      if (text !== 'none' && text !== 'positive' && text !== 'negative' && text !== 'full')
        return fail(`iothub-ack must be none, positive, negative or full, not ${clip(text)}.`);
      ack = text;
    } else {
      properties[name] = text;
    }
  }
  const expiry = message.absolute_expiry_time;
  const outgoing: OutgoingC2d = {
    body: bodyBytes(message.body),
    ...idField('messageId', message.message_id),
    ...idField('correlationId', message.correlation_id),
    ...userIdField(message.user_id as unknown),
    ...(typeof message.content_type === 'string' ? { contentType: message.content_type } : {}),
    ...(typeof message.content_encoding === 'string' ? { contentEncoding: message.content_encoding } : {}),
    ...(expiry instanceof Date
      ? { expiryTimeUtc: expiry }
      : typeof expiry === 'number'
        ? { expiryTimeUtc: new Date(expiry) }
        : {}),
    ...(ack !== undefined ? { ack } : {}),
    properties,
  };
  return { ok: true, deviceId, outgoing };
}

/** A module's cloud-to-device address, as the C# service SDK's `SendAsync(deviceId, moduleId, …)` sets `to`. */
const MODULE_C2D_ADDRESS = /^\/devices\/[^/]+\/modules\/[^/]+\/messages\/devicebound$/i;

/**
 * IoT Hub's refusal of a cloud-to-device message as the AMQP condition `azure-iothub` translates
 * (azure-iot-amqp-base's amqp_common_errors, the service's amqp_service_errors): no such device
 * `amqp:not-found` (DeviceNotFoundError), queue full `amqp:resource-limit-exceeded`
 * (DeviceMaximumQueueDepthExceededError), too large `amqp:link:message-size-exceeded`
 * (MessageTooLargeError), bad properties `com.microsoft:argument-error` (ArgumentError). The
 * description is IoT Hub's error code and message. Undefined for any other error (a store fault).
 */
export function rejectionOf(err: unknown): AmqpRejection | undefined {
  if (err instanceof C2dError) {
    const condition =
      err.status === 403
        ? 'amqp:resource-limit-exceeded'
        : err.status === 413
          ? 'amqp:link:message-size-exceeded'
          : 'com.microsoft:argument-error';
    return { condition, description: `ErrorCode:${err.code};${err.message}` };
  }
  if (err instanceof HubError && err.status === 404)
    return { condition: 'amqp:not-found', description: `ErrorCode:${err.code};${err.message}` };
  return undefined;
}

/** A message or correlation id: AMQP's uuid type (16 bytes) as IoT Hub shows it, a string, or a number. */
function idField<K extends 'messageId' | 'correlationId'>(key: K, value: unknown): { [P in K]?: string } {
  if (value instanceof Uint8Array && value.length === 16)
    return { [key]: rhea.uuid_to_string(Buffer.from(value)) } as { [P in K]?: string };
  if (typeof value === 'string' && value !== '') return { [key]: value } as { [P in K]?: string };
  if (typeof value === 'number' || typeof value === 'bigint') return { [key]: String(value) } as { [P in K]?: string };
  return {};
}

function propertyText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return undefined;
}

/** The message body: a data section's bytes (what the SDK sends), a string, or nothing. */
function bodyBytes(body: unknown): Buffer {
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body && typeof body === 'object' && 'content' in body) {
    const content = (body as { content: unknown }).content;
    if (content instanceof Uint8Array) return Buffer.from(content);
    if (typeof content === 'string') return Buffer.from(content, 'utf8');
  }
  return Buffer.alloc(0);
}

/** `user_id`: AMQP binary (the SDK sends none; IoT Hub shows it as text). */
function userIdField(value: unknown): { userId?: string } {
  if (value instanceof Uint8Array && value.length > 0) return { userId: Buffer.from(value).toString('utf8') };
  if (typeof value === 'string' && value !== '') return { userId: value };
  return {};
}
