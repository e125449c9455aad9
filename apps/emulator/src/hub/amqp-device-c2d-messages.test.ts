// A queued cloud-to-device message as the hub sends it to an AMQP device, through rhea's own
// encoding and decoding and read back by azure-iot-amqp-base's AmqpMessage.toMessage (what
// azure-iot-device-amqp emits as 'message'); the lock token as the C# SDK reads it from the tag.
import amqpBase from 'azure-iot-amqp-base';
import rhea, { type Message } from 'rhea';
import { describe, expect, it } from 'vitest';
import { C2D_ANNOTATIONS, c2dDeviceMessage, lockTokenTag } from './amqp-device-c2d-messages.js';
import type { QueuedC2d } from './core/c2d.js';

const queued: QueuedC2d = {
  hub: 'hub-a.azure-devices.net',
  deviceId: 'dev-1',
  seq: 7,
  id: 'hub-own-id',
  body: Buffer.from('toast'),
  messageId: 'm-1',
  correlationId: 'c-1',
  userId: 'svc',
  contentType: 'text/plain',
  contentEncoding: 'utf-8',
  ack: 'positive',
  properties: { color: 'red' },
  enqueuedMs: Date.parse('2026-12-05T06:00:00Z'),
  expiryMs: Date.parse('2026-12-05T07:00:00Z'),
  expirySet: true,
  deliveryCount: 2,
  lock: { token: '00112233-4455-6677-8899-aabbccddeeff', connection: 'link-1' },
};

function onTheWire(message: QueuedC2d): Message {
  return rhea.message.decode(
    rhea.message.encode(c2dDeviceMessage(message) as unknown as Message),
  ) as unknown as Message;
}

describe('a cloud-to-device message sent to an AMQP device', () => {
  it('carries the properties, annotations and body the device SDKs read', () => {
    const wire = onTheWire(queued);
    expect(wire).toMatchObject({
      message_id: 'm-1',
      to: '/devices/dev-1/messages/devicebound',
      correlation_id: 'c-1',
      content_type: 'text/plain',
      content_encoding: 'utf-8',
      delivery_count: 2,
      application_properties: { 'iothub-ack': 'positive', color: 'red' },
    });
    expect(wire.user_id?.toString()).toBe('svc');
    expect((wire.absolute_expiry_time as Date).toISOString()).toBe('2026-12-05T07:00:00.000Z');
    const annotations = wire.message_annotations ?? {};
    expect(annotations[C2D_ANNOTATIONS.lockToken]).toBe('00112233-4455-6677-8899-aabbccddeeff');
    expect(annotations[C2D_ANNOTATIONS.sequenceNumber]).toBe(7);
    expect((annotations[C2D_ANNOTATIONS.enqueuedTime] as Date).toISOString()).toBe('2026-12-05T06:00:00.000Z');
    expect(annotations[C2D_ANNOTATIONS.deliveryCount]).toBe(2);

    const sdk = amqpBase.AmqpMessage.toMessage(wire as never);
    expect(sdk.data.toString()).toBe('toast');
    expect(sdk.messageId).toBe('m-1');
    expect(sdk.ack).toBe('positive');
    expect(sdk.properties.getValue('color')).toBe('red');
  });

  it('leaves out what the service did not set (no expiry, ids, user id, content type)', () => {
    const {
      messageId: _m,
      correlationId: _c,
      userId: _u,
      contentType: _t,
      contentEncoding: _e,
      ack: _a,
      ...bare
    } = queued;
    const wire = onTheWire({ ...bare, expirySet: false, properties: {} });
    for (const field of [
      'message_id',
      'correlation_id',
      'user_id',
      'content_type',
      'content_encoding',
      'absolute_expiry_time',
    ])
      expect(wire).not.toHaveProperty(field);
    expect(wire.application_properties).toEqual({ 'iothub-ack': 'none' });
  });

  it("tags the delivery with the lock token's bytes in .NET Guid order", () => {
    // new Guid("00112233-4455-6677-8899-aabbccddeeff").ToByteArray()
    expect(lockTokenTag('00112233-4455-6677-8899-aabbccddeeff').toString('hex')).toBe(
      '33221100554477668899aabbccddeeff',
    );
    expect(lockTokenTag('not-a-guid')).toEqual(Buffer.from('not-a-guid'));
  });
});
