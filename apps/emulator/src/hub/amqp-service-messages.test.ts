// The service's cloud-to-device message as azure-iothub builds it (azure-iot-amqp-base's
// AmqpMessage.fromMessage, `to` as its Amqp.send sets it), through rhea's own encoding and decoding:
// what the hub's AMQP service endpoint reads.
import amqpBase from 'azure-iot-amqp-base';
import deviceSdk from 'azure-iot-device';
import rhea, { type Message } from 'rhea';
import { describe, expect, it } from 'vitest';
import { c2dOfServiceMessage, rejectionOf } from './amqp-service-messages.js';
import { C2dError, enqueue, MAX_C2D_MESSAGE_BYTES } from './core/c2d.js';
import { HubError } from './core/hub-service.js';
import { MODULE_C2D_REFUSAL } from './core/modules.js';
import { MemoryHubStore } from './core/store.js';

/** The message azure-iothub's Client.send(deviceId, message) puts on the wire, as the hub decodes it. */
function onTheWire(deviceId: string, build: (message: InstanceType<typeof deviceSdk.Message>) => void): Message {
  const message = new deviceSdk.Message('toast');
  build(message);
  const amqp = amqpBase.AmqpMessage.fromMessage(message);
  // azure-iothub's Amqp.send: `to` is endpoint.deviceMessagePath(encodeURIComponent(deviceId)).
  amqp.to = `/devices/${encodeURIComponent(deviceId)}/messages/devicebound`;
  return rhea.message.decode(rhea.message.encode(amqp as unknown as Message)) as unknown as Message;
}

describe('a cloud-to-device message from azure-iothub over AMQP', () => {
  it('reads the device, ids (a UUID as AMQP uuid), expiry, ack and application properties', () => {
    const parsed = c2dOfServiceMessage(
      onTheWire('dev 1', (m) => {
        m.messageId = '3b1f0a58-8a8b-4d77-9c8f-0d4c4b7f7a11';
        m.correlationId = 'corr-1';
        m.contentType = 'application/json';
        m.contentEncoding = 'utf-8';
        m.ack = 'full';
        m.expiryTimeUtc = new Date('2026-12-05T04:00:00Z');
        m.properties.add('color', 'red');
      }),
    );
    expect(parsed).toEqual({
      ok: true,
      deviceId: 'dev 1',
      outgoing: {
        body: Buffer.from('toast'),
        messageId: '3b1f0a58-8a8b-4d77-9c8f-0d4c4b7f7a11',
        correlationId: 'corr-1',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        expiryTimeUtc: new Date('2026-12-05T04:00:00Z'),
        ack: 'full',
        properties: { color: 'red' },
      },
    });
  });

  it('refuses a message without a device address, to a module, or with an ack IoT Hub does not know', () => {
    const nowhere = onTheWire('d', () => {});
    nowhere.to = '/devices/d/messages/events';
    expect(c2dOfServiceMessage(nowhere)).toMatchObject({
      ok: false,
      rejection: { condition: 'com.microsoft:argument-error' },
    });
    // A module's address, as the C# service SDK's SendAsync(deviceId, moduleId, message) sets it: refused, saying why.
    const toModule = onTheWire('d', () => {});
    toModule.to = '/devices/d/modules/sensor/messages/deviceBound';
    expect(c2dOfServiceMessage(toModule)).toEqual({
      ok: false,
      rejection: { condition: 'com.microsoft:argument-error', description: MODULE_C2D_REFUSAL },
    });
    expect(c2dOfServiceMessage(onTheWire('d', (m) => m.properties.add('iothub-ack', 'always')))).toMatchObject({
      ok: false,
      rejection: { condition: 'com.microsoft:argument-error', description: expect.stringContaining('iothub-ack') },
    });
  });

  it("gives IoT Hub's refusals the AMQP conditions azure-iothub translates", () => {
    const store = new MemoryHubStore();
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return rejectionOf(err);
      }
      throw new Error('accepted');
    };
    expect(
      refused(() => enqueue(store, 'h', 'd', { body: Buffer.alloc(MAX_C2D_MESSAGE_BYTES + 1) }, 0))?.condition,
    ).toBe('amqp:link:message-size-exceeded');
    expect(rejectionOf(new C2dError(403, 'DeviceMaximumQueueDepthExceeded', 403004, 'full'))).toEqual({
      condition: 'amqp:resource-limit-exceeded',
      description: 'ErrorCode:DeviceMaximumQueueDepthExceeded;full',
    });
    expect(rejectionOf(new HubError(404, 'DeviceNotFound', 'Device d not found.'))?.condition).toBe('amqp:not-found');
    expect(rejectionOf(new Error('disk full'))).toBeUndefined();
  });
});
