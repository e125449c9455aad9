import rhea from 'rhea';
import { c2dTo, type QueuedC2d } from './core/c2d.js';

/**
 * The message annotations IoT Hub's device-bound AMQP messages carry, as the C# device SDK reads
 * them (azure-iot-sdk-csharp `AmqpIotMessageConverter.UpdateMessageHeaderAndProperties`): the lock
 * token as text, the sequence number (ulong), the enqueued time (timestamp) and the delivery count
 * (ubyte).
 */
export const C2D_ANNOTATIONS = {
  lockToken: 'x-opt-lock-token',
  sequenceNumber: 'x-opt-sequence-number',
  enqueuedTime: 'iothub-enqueuedtime',
  deliveryCount: 'iothub-deliverycount',
} as const;

/**
 * A queued cloud-to-device message as IoT Hub sends it to a device over AMQP, on its receiver link
 * from `/devices/{id}/messages/devicebound`: the AMQP properties azure-iot-amqp-base's
 * `AmqpMessage.toMessage` (and the C# SDK) read (`message_id`, `to`, `absolute_expiry_time` when
 * the service set one, as MQTT's `$.exp`, `correlation_id`, `user_id` as bytes, `content_type`,
 * `content_encoding`), the header's `delivery_count` (the times it was abandoned), the annotations
 * of C2D_ANNOTATIONS, the application properties with `iothub-ack` (the Node SDK's `message.ack`),
 * the body as one data section.
 */
export function c2dDeviceMessage(message: QueuedC2d): Record<string, unknown> {
  const lockToken = message.lock?.token;
  return {
    ...(message.messageId !== undefined ? { message_id: message.messageId } : {}),
    to: c2dTo(message.deviceId),
    ...(message.expirySet ? { absolute_expiry_time: new Date(message.expiryMs) } : {}),
    ...(message.correlationId !== undefined ? { correlation_id: message.correlationId } : {}),
    ...(message.userId !== undefined ? { user_id: Buffer.from(message.userId, 'utf8') } : {}),
    ...(message.contentType !== undefined ? { content_type: message.contentType } : {}),
    ...(message.contentEncoding !== undefined ? { content_encoding: message.contentEncoding } : {}),
    delivery_count: message.deliveryCount,
    message_annotations: {
      ...(lockToken !== undefined ? { [C2D_ANNOTATIONS.lockToken]: lockToken } : {}),
      [C2D_ANNOTATIONS.sequenceNumber]: rhea.types.wrap_ulong(message.seq),
      [C2D_ANNOTATIONS.enqueuedTime]: new Date(message.enqueuedMs),
      [C2D_ANNOTATIONS.deliveryCount]: rhea.types.wrap_ubyte(Math.min(message.deliveryCount, 255)),
    },
    application_properties: { 'iothub-ack': message.ack ?? 'none', ...message.properties },
    body: rhea.message.data_section(message.body),
  };
}

/**
 * The delivery tag of a message sent under `lockToken`: the token's 16 bytes as .NET's
 * `Guid.ToByteArray` lays them out (the first three groups little-endian), since the C# device SDK
 * reads a received message's lock token as `new Guid(amqpMessage.DeliveryTag.Array)` and settles by
 * it. A token that is not a GUID is its UTF-8 bytes (the emulator's tokens are all GUIDs).
 */
export function lockTokenTag(lockToken: string): Buffer {
  const hex = lockToken.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) return Buffer.from(lockToken, 'utf8');
  const bytes = Buffer.from(hex, 'hex');
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  return bytes;
}
