// azure-iothub's Client.send over AMQP (its Amqp transport: CBS put-token with the iothubowner
// policy's token, a sender link to /messages/devicebound) reaching an azure-iot-device client over
// MQTT, and IoT Hub's refusals as the SDK's errors. The transport is given the emulator's address
// (`host`) and a base that trusts its CA (the SDK's own constructor arguments); the token names the hub.
import iothub from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import {
  amqpServiceClient,
  createDeviceKey,
  deviceClient,
  Message,
  nextHubEvent,
  registryClient,
} from '../testing/hub-sdk.js';
import { hubDeviceToken, rawRequest, registryToken } from '../testing/raw-https.js';
import { TrustingAmqpBase } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_C2D_QUEUE_DEPTH } from './core/c2d.js';

const { Client, Amqp } = iothub;

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** azure-iothub's service Client over AMQP (amqpServiceClient); with `token`, the SDK's Amqp transport built on that token. */
function serviceOverAmqp(token?: string) {
  if (token === undefined) return amqpServiceClient(bed.emulator, HUB_A);
  const endpoint = bed.emulator.endpoints.amqp;
  if (!endpoint) throw new Error('the emulator runs without AMQP');
  const transport = new Amqp(
    { host: `localhost:${endpoint.port}`, sharedAccessSignature: token } as never,
    new TrustingAmqpBase(bed.emulator.caCertPem) as never,
  );
  return new Client(transport as never);
}

/** What Client.send rejected with. */
async function sendFailure(client: InstanceType<typeof Client>, deviceId: string, message: unknown) {
  return client.send(deviceId, message as never).then(
    () => {
      throw new Error('sent');
    },
    (err: Error & { amqpError?: { condition?: string; description?: string } }) => err,
  );
}

describe('azure-iothub Client.send over AMQP', () => {
  it("queues the message for the device, which gets it over MQTT with the service's properties", async () => {
    const id = 'c2d-amqp-1';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await device.open();
    const service = serviceOverAmqp();
    try {
      const received = new Promise<InstanceType<typeof Message>>((resolve) => device.once('message', resolve));
      const completed = nextHubEvent(
        bed.emulator,
        (e) => e.kind === 'c2d' && e.deviceId === id && e.outcome === 'completed',
      );
      const message = new Message(JSON.stringify({ toast: 'now' }));
      message.messageId = '3b1f0a58-8a8b-4d77-9c8f-0d4c4b7f7a11';
      message.correlationId = 'order-7';
      message.ack = 'full';
      message.properties.add('color', 'golden');
      await service.open();
      const { result } = await service.send(id, message);
      expect(result?.constructor.name).toBe('MessageEnqueued');
      const got = await received;
      expect(JSON.parse(got.data.toString())).toEqual({ toast: 'now' });
      expect(got.messageId).toBe('3b1f0a58-8a8b-4d77-9c8f-0d4c4b7f7a11');
      expect(got.correlationId).toBe('order-7');
      const properties = Object.fromEntries(
        Array.from({ length: got.properties.count() }, (_, i) => {
          const item = got.properties.getItem(i);
          return [item.key, item.value];
        }),
      );
      expect(properties).toEqual({ color: 'golden', 'iothub-ack': 'full' });
      await device.complete(got);
      await completed;
    } finally {
      await service.close();
      await device.close();
    }
  });

  it("answers IoT Hub's refusals as the SDK's errors: no device, a full queue; the link goes on", async () => {
    const id = 'c2d-amqp-full';
    await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const service = serviceOverAmqp();
    try {
      const missing = await sendFailure(service, 'c2d-amqp-nobody', 'hello');
      expect(missing.name).toBe('DeviceNotFoundError');
      for (let i = 0; i < MAX_C2D_QUEUE_DEPTH; i++) await service.send(id, `m${i}`);
      const full = await sendFailure(service, id, 'one too many');
      expect(full.name).toBe('DeviceMaximumQueueDepthExceededError');
      expect(bed.emulator.cloudToDeviceQueue(id)).toHaveLength(MAX_C2D_QUEUE_DEPTH);
    } finally {
      await service.close();
    }
  });

  it("refuses a connection whose token is a device's, not a policy's with ServiceConnect", async () => {
    const id = 'c2d-amqp-device-token';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const service = serviceOverAmqp(hubDeviceToken(HUB_A, id, key));
    try {
      const err = await sendFailure(service, id, 'hello');
      expect(err.name).toMatch(/Unauthorized/);
      expect(bed.emulator.cloudToDeviceQueue(id)).toEqual([]);
    } finally {
      await service.close().catch(() => {});
    }
  });

  it("gives the feedback asked for (iothub-ack) to getFeedbackReceiver, as IoT Hub's feedback message", async () => {
    const id = 'c2d-amqp-feedback';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const generationId = (await registryClient(bed.emulator, HUB_A).get(id)).responseBody.generationId;
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    const service = serviceOverAmqp();
    const records: Record<string, unknown>[] = [];
    let contentType: unknown;
    try {
      await service.open();
      const { result: receiver } = (await service.getFeedbackReceiver()) as unknown as {
        result: {
          on(event: 'message', listener: (message: InstanceType<typeof Message>) => void): void;
          complete(message: unknown, done: () => void): void;
        };
      };
      receiver.on('message', (message) => {
        contentType = message.contentType;
        records.push(...(JSON.parse(message.data.toString()) as Record<string, unknown>[]));
        receiver.complete(message, () => {});
      });
      const success = new Message('done?');
      success.messageId = 'wants-success';
      success.ack = 'full';
      const quiet = new Message('no feedback');
      quiet.messageId = 'wants-none';
      quiet.ack = 'positive';
      const purged = new Message('purged');
      purged.messageId = 'wants-negative';
      purged.ack = 'negative';
      // Queued while the device is away: purged (positive asks nothing for that, negative does).
      await service.send(id, quiet);
      await service.send(id, purged);
      const purge = await rawRequest(bed.emulator, {
        method: 'DELETE',
        path: `/devices/${id}/commands?api-version=2021-04-12`,
        headers: { Host: HUB_A, Authorization: registryToken(HUB_A) },
      });
      expect(purge.json).toMatchObject({ totalMessagesPurged: 2 });
      // Completed by the device's PUBACK.
      await device.open();
      device.on('message', (message: InstanceType<typeof Message>) => void device.complete(message));
      await service.send(id, success);
      // The hub's feedback queue: the first test's message asked for feedback too.
      const ofDevice = () => records.filter((r) => r.deviceId === id);
      await until(() => ofDevice().length >= 2);
      expect(contentType).toBe('application/vnd.microsoft.iothub.feedback.json');
      expect(ofDevice()).toEqual([
        {
          originalMessageId: 'wants-negative',
          enqueuedTimeUtc: expect.any(String),
          statusCode: 'Purged',
          description: 'Message purged',
          deviceId: id,
          deviceGenerationId: generationId,
        },
        expect.objectContaining({ originalMessageId: 'wants-success', statusCode: 'Success', deviceId: id }),
      ]);
    } finally {
      await service.close();
      await device.close();
    }
  });
});

/** Resolves once `done()` holds, checking every 20 ms (no deadline: the test's own timeout bounds it). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
}
