// Cloud-to-device messages to a device connected over AMQP with the official packages:
// azure-iot-device's Client over azure-iot-device-amqp's Amqp and AmqpWs ('message' attaches its
// receiver link from /devices/{id}/messages/devicebound; complete/reject/abandon are the delivery's
// accepted/rejected/released dispositions). A message queued for a device that does not listen
// leaves its connection alone. Messages are queued with the emulator's sendCloudToDevice. No timing
// is asserted: the tests wait for events.
import type { Message as AmqpMessage } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { c2dEvent as c2dEventOf, c2dOutcomes, propertiesOf, type SdkMessage } from '../testing/c2d.js';
import { HUB_A } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  Message,
  nextHubEvent,
  registryClient,
} from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_C2D_QUEUE_DEPTH } from './core/c2d.js';
import type { HubEvent } from './core/hub-service.js';

let bed: TestBedWithWebhook;
const events: HubEvent[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
  bed.emulator.on('hub', (event) => events.push(event));
});
afterAll(async () => {
  await bed?.close();
});

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The messages the SDK client emits, in turn: one listener for the client's life (its first
 * attaches the C2D link; removing the last detaches it, and a message can be settled only on the
 * link it came on: azure-iot-device-amqp's DeviceMessageLockLostError 'No active C2D link').
 */
function inbox(client: DeviceClient): () => Promise<SdkMessage> {
  const waiting: SdkMessage[] = [];
  const readers: ((message: SdkMessage) => void)[] = [];
  client.on('message', (message: SdkMessage) => {
    const reader = readers.shift();
    if (reader) reader(message);
    else waiting.push(message);
  });
  return () => {
    const message = waiting.shift();
    return message ? Promise.resolve(message) : new Promise((resolve) => readers.push(resolve));
  };
}

function c2dEvent(deviceId: string, outcome: string): Promise<HubEvent> {
  return c2dEventOf(bed.emulator, deviceId, outcome);
}

function outcomes(deviceId: string): string[] {
  return c2dOutcomes(events, deviceId);
}

it('keeps an AMQP device connected when a cloud-to-device message is queued for it', async () => {
  const id = 'amqp-c2d-stays';
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
  const sdkDisconnects: unknown[] = [];
  client.on('disconnect', (reason: unknown) => sdkDisconnects.push(reason));
  await client.open();
  try {
    // The device's links are attached as it uses them: its telemetry link first.
    await client.sendEvent(new Message('hello'));
    bed.emulator.sendCloudToDevice(id, { body: 'for later', messageId: 'c2d-1' });
    // A round trip on the device's connection after the push: a closed connection would have
    // ended (the hub's disconnected event, written as the socket closes) before it completes.
    const stored = nextHubEvent(
      bed.emulator,
      (e) => e.kind === 'telemetry' && e.deviceId === id && bed.emulator.telemetry(HUB_A, id).length === 2,
    );
    await client.sendEvent(new Message('still here'));
    await stored;
    const hubEvents = events.filter((e) => 'deviceId' in e && e.deviceId === id).map((e) => e.kind);
    expect(hubEvents).not.toContain('disconnected');
    expect(sdkDisconnects).toEqual([]);
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ messageId: 'c2d-1' }]);
  } finally {
    await client.close();
  }
});

describe.each(['amqp', 'amqp-ws'] as const)('cloud-to-device messages to a device over %s', (transport) => {
  it('delivers queued messages with their properties; accepting completes them', async () => {
    const id = `amqp-c2d-receive-${transport}`;
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const expiry = new Date(Date.now() + 30 * 60_000);
    bed.emulator.sendCloudToDevice(id, {
      body: 'toast: 3 slices',
      messageId: 'msg-1',
      correlationId: 'corr-1',
      userId: 'service-1',
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      expiryTimeUtc: expiry,
      ack: 'full',
      properties: { color: 'golden', level: '3' },
    });
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport });
    await client.open();
    const nextMessage = inbox(client);
    try {
      // Queued before the device listened: sent once its link is attached.
      const message = await nextMessage();
      expect(message.data.toString()).toBe('toast: 3 slices');
      expect(message.messageId).toBe('msg-1');
      expect(message.correlationId).toBe('corr-1');
      expect(message.to).toBe(`/devices/${id}/messages/devicebound`);
      expect(message.contentType).toBe('text/plain');
      expect(message.contentEncoding).toBe('utf-8');
      expect(new Date(message.expiryTimeUtc as Date).toISOString()).toBe(expiry.toISOString());
      expect(message.ack).toBe('full');
      expect(propertiesOf(message)).toEqual({ color: 'golden', level: '3' });
      const raw = message.transportObj as AmqpMessage;
      expect(raw.user_id?.toString()).toBe('service-1');
      expect(raw.delivery_count).toBe(0);
      expect(raw.message_annotations?.['x-opt-lock-token']).toMatch(GUID);
      expect(raw.message_annotations?.['x-opt-sequence-number']).toBe(1);
      expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Invisible', deliveryCount: 0 }]);

      const completed = c2dEvent(id, 'completed');
      await client.complete(message);
      expect(await completed).toMatchObject({ transport: 'amqp', messageId: 'msg-1', bytes: 15 });
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
      expect(outcomes(id)).toEqual(['enqueued', 'delivered', 'completed']);

      // One sent while the device listens arrives at once.
      const next = nextMessage();
      bed.emulator.sendCloudToDevice(id, { body: Buffer.from([1, 2, 3]) });
      const bytes = await next;
      expect([...bytes.data]).toEqual([1, 2, 3]);
      expect(bytes.ack).toBe('none');
      const done = c2dEvent(id, 'completed');
      await client.complete(bytes);
      await done;
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

describe('cloud-to-device dispositions over AMQP', () => {
  it('rejects (dead-lettered) and abandons (sent again, delivery count one higher) as the device settles', async () => {
    const id = 'amqp-c2d-settle';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    await client.open();
    const nextMessage = inbox(client);
    try {
      const first = nextMessage();
      bed.emulator.sendCloudToDevice(id, { body: 'once', messageId: 'm1' });
      const once = await first;
      const abandoned = c2dEvent(id, 'abandoned');
      const again = nextMessage();
      await client.abandon(once);
      expect(await abandoned).toMatchObject({ transport: 'amqp', deliveryCount: 1 });
      const twice = await again;
      expect(twice.messageId).toBe('m1');
      const raw = twice.transportObj as AmqpMessage;
      expect(raw.delivery_count).toBe(1);
      expect(raw.message_annotations?.['iothub-deliverycount']).toBe(1);
      // A new lock each delivery.
      expect(raw.message_annotations?.['x-opt-lock-token']).not.toBe(
        (once.transportObj as AmqpMessage).message_annotations?.['x-opt-lock-token'],
      );
      const rejected = c2dEvent(id, 'rejected');
      await client.reject(twice);
      expect(await rejected).toMatchObject({ transport: 'amqp', messageId: 'm1' });
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
      expect(outcomes(id)).toEqual(['enqueued', 'delivered', 'abandoned', 'delivered', 'rejected']);
    } finally {
      await client.close();
    }
  });

  it('puts a message back when the link closes unsettled; the next connection gets it', async () => {
    const id = 'amqp-c2d-unsettled';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    bed.emulator.sendCloudToDevice(id, { body: 'again', messageId: 'unsettled' });
    const first = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    await first.open();
    expect((await inbox(first)()).messageId).toBe('unsettled');
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Invisible' }]);
    const released = c2dEvent(id, 'released');
    await first.close();
    await released;
    expect(bed.emulator.cloudToDeviceQueue(id)).toMatchObject([{ state: 'Enqueued', deliveryCount: 0 }]);

    const second = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    await second.open();
    try {
      const message = await inbox(second)();
      expect(message.messageId).toBe('unsettled');
      const completed = c2dEvent(id, 'completed');
      await second.complete(message);
      await completed;
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

describe('a device that stops and starts listening over AMQP', () => {
  it('keeps its connection: the messages its closed link held unsettled stop counting against it', async () => {
    // Every message the closed link held is put back and sent again on the next link, unsettled:
    // the listener's bound on a connection's unsettled messages (MAX_UNSETTLED_ANSWERS, 128) must
    // count only those the client can still settle, or the third round (3 x 50 > 128) closes it.
    const id = 'amqp-c2d-relisten';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    for (let i = 0; i < MAX_C2D_QUEUE_DEPTH; i++) bed.emulator.sendCloudToDevice(id, { body: `m${i}` });
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    const disconnected = new Promise<string>((resolve) => client.once('disconnect', () => resolve('disconnected')));
    await client.open();
    try {
      for (let round = 0; round < 3; round++) {
        // Received and left unsettled (never completed): the link holds every one.
        const received = new Promise<string>((resolve) => {
          let n = 0;
          client.on('message', function listener() {
            if (++n < MAX_C2D_QUEUE_DEPTH) return;
            client.removeListener('message', listener);
            resolve('all');
          });
        });
        expect(await Promise.race([received, disconnected])).toBe('all');
        // Removing the last listener detached the link: its messages are Enqueued again.
        const enqueued = new Promise<void>((resolve) => {
          let n = 0;
          const listener = (event: HubEvent) => {
            if (event.kind !== 'c2d' || event.deviceId !== id || event.outcome !== 'released') return;
            if (++n < MAX_C2D_QUEUE_DEPTH) return;
            bed.emulator.off('hub', listener);
            resolve();
          };
          bed.emulator.on('hub', listener);
        });
        await Promise.race([enqueued, disconnected]);
      }
      expect(bed.emulator.cloudToDeviceQueue(id)).toHaveLength(MAX_C2D_QUEUE_DEPTH);
    } finally {
      await client.close();
    }
  });
});
