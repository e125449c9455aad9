// The emulated hubs' device API over AMQP with the official packages only: azure-iot-device's
// Client over azure-iot-device-amqp's Amqp (TLS) and AmqpWs (WebSockets): telemetry, the twin (get,
// reported, desired pushed), direct methods from azure-iothub's Client.invokeDeviceMethod. No
// timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  type HubDeviceTransport,
  Message,
  nextHubEvent,
  registryClient,
  reporter,
  serviceClient,
} from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

const transports: HubDeviceTransport[] = ['amqp', 'amqp-ws'];

/** A device of HUB_A created through the registry, its AMQP client opened. */
async function openedDevice(id: string, transport: HubDeviceTransport): Promise<DeviceClient> {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport });
  await client.open();
  return client;
}

describe.each(transports)('the hub device API over %s', (transport) => {
  it('stores telemetry with its application and system properties, as over MQTT', async () => {
    const id = `amqp-telemetry-${transport}`;
    const client = await openedDevice(id, transport);
    try {
      const seen = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
      const message = new Message(JSON.stringify({ temperature: 21.5 }));
      message.properties.add('alert', 'none');
      message.messageId = 'm-1';
      message.contentType = 'application/json';
      message.contentEncoding = 'utf-8';
      await client.sendEvent(message);
      expect(await seen).toMatchObject({ transport: 'amqp', hub: HUB_A });
      const [received] = bed.emulator.telemetry(HUB_A, id);
      expect(JSON.parse(received?.body.toString() ?? '')).toEqual({ temperature: 21.5 });
      expect(received?.transport).toBe('amqp');
      expect(received?.properties).toMatchObject({
        alert: 'none',
        '$.mid': 'm-1',
        '$.ct': 'application/json',
        '$.ce': 'utf-8',
      });
      // A burst beyond the link's credit waits for credit and is stored whole.
      await Promise.all(Array.from({ length: 25 }, (_, i) => client.sendEvent(new Message(`burst ${i}`))));
      expect(bed.emulator.telemetry(HUB_A, id).length).toBe(26);
    } finally {
      await client.close();
    }
  });

  it("refuses a message over 256 KiB (IoT Hub's device-to-cloud limit) and takes the next", async () => {
    const id = `amqp-large-${transport}`;
    const client = await openedDevice(id, transport);
    try {
      const error = await client.sendEvent(new Message(Buffer.alloc(300 * 1024, 0x61))).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(error?.name).toBe('MessageTooLargeError');
      await client.sendEvent(new Message('small'));
      expect(bed.emulator.telemetry(HUB_A, id).map((record) => record.body.toString())).toEqual(['small']);
    } finally {
      await client.close();
    }
  });

  it('gets its twin, reports properties and is pushed desired changes', async () => {
    const id = `amqp-twin-${transport}`;
    const client = await openedDevice(id, transport);
    try {
      const registry = registryClient(bed.emulator, HUB_A);
      const twin = await client.getTwin();
      expect(twin.properties.desired).toMatchObject({ $version: 1 });
      expect(await reporter(twin)({ firmware: '1.2.3' })).toBeUndefined();
      const after = (await registry.getTwin(id)).responseBody;
      expect(after.properties.reported).toMatchObject({ firmware: '1.2.3' });

      const desired = new Promise<Record<string, unknown>>((resolve) =>
        twin.on('properties.desired', (delta: Record<string, unknown>) => {
          if (delta.state === 'toasting') resolve(delta);
        }),
      );
      // The twin's listener asks for desired updates in the background (a PUT on the twin link); the
      // same request through the transport is answered after it (one link, answered in order).
      await new Promise<void>((resolve, reject) =>
        (
          client as unknown as { _transport: { enableTwinDesiredPropertiesUpdates(cb: (err?: Error) => void): void } }
        )._transport.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve())),
      );
      await registry.updateTwin(id, { properties: { desired: { state: 'toasting' } } }, after.etag);
      expect(await desired).toMatchObject({ state: 'toasting', $version: 2 });

      // A patch the twin's rules refuse (an integer past 2^53) is refused to the device (status 400).
      const refused = await reporter(twin)({ serial: 5283920058631410000 });
      // azure-iot-device-amqp wraps the twin client's FormatError (status 400) in a plain Error.
      expect((refused as (Error & { amqpError?: Error }) | undefined)?.amqpError?.name).toBe('FormatError');
      expect((await registry.getTwin(id)).responseBody.properties.reported).not.toHaveProperty('serial');
    } finally {
      await client.close();
    }
  });

  it("answers azure-iothub's invokeDeviceMethod through onDeviceMethod", async () => {
    const id = `amqp-method-${transport}`;
    const client = await openedDevice(id, transport);
    try {
      client.onDeviceMethod('reboot', (request, response) => {
        void response.send(200, { rebooting: true, asked: request.payload });
      });
      // onDeviceMethod attaches the links in the background: the call waits for them (connectTimeoutInSeconds).
      const { result } = await serviceClient(bed.emulator, HUB_A).invokeDeviceMethod(id, {
        methodName: 'reboot',
        payload: { delay: 5 },
        responseTimeoutInSeconds: 30,
        connectTimeoutInSeconds: 30,
      });
      expect(result).toEqual({ status: 200, payload: { rebooting: true, asked: { delay: 5 } } });
    } finally {
      await client.close();
    }
  });

  it('ends a call with 504101 when the device closes its connection before answering', async () => {
    const id = `amqp-method-gone-${transport}`;
    const client = await openedDevice(id, transport);
    client.onDeviceMethod('hang', () => {
      // Never answers: closes its connection instead, once the request has arrived.
      void client.close();
    });
    const error = await serviceClient(bed.emulator, HUB_A)
      .invokeDeviceMethod(id, { methodName: 'hang', responseTimeoutInSeconds: 300, connectTimeoutInSeconds: 30 })
      .then(
        () => undefined,
        (e: Error & { responseBody?: string }) => e,
      );
    expect(JSON.parse(JSON.parse(error?.responseBody ?? '{}').Message).errorCode).toBe(504101);
  });
});
