import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A, HUB_B, WEBHOOK_TWIN } from '../testing/fixtures.js';
import { deviceClient, expectRefused, Message, nextHubEvent, registryClient, reporter } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_HUB_BODY_BYTES } from './https-api.js';

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

describe('the emulated hub with the official SDKs', () => {
  it('a provisioned device finds its initial twin, reports, gets desired changes and sends telemetry', async () => {
    const id = 'hub-toaster-1';
    const key = groupDeviceKey('custom', id);
    const state = await register(bed.emulator, id, key);
    expect(state).toMatchObject({ status: 'assigned', assignedHub: HUB_A, deviceId: id });

    const registry = registryClient(bed.emulator, HUB_A);
    const { responseBody: serviceTwin } = await registry.getTwin(id);
    expect(serviceTwin.tags).toEqual(WEBHOOK_TWIN.tags);
    expect(serviceTwin.properties.desired).toMatchObject(WEBHOOK_TWIN.properties.desired);

    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const twin = await client.getTwin();
      expect(twin.properties.desired).toMatchObject({ ...WEBHOOK_TWIN.properties.desired, $version: 1 });
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ firmware: '1.2.3' }, (err?: Error) => (err ? reject(err) : resolve())),
      );
      const after = (await registry.getTwin(id)).responseBody;
      expect(after.properties.reported).toMatchObject({ firmware: '1.2.3' });

      const desired = new Promise<Record<string, unknown>>((resolve) =>
        twin.on('properties.desired', (delta: Record<string, unknown>) => {
          if (delta.state === 'toasting') resolve(delta);
        }),
      );
      await registry.updateTwin(id, { properties: { desired: { state: 'toasting' } } }, after.etag);
      expect(await desired).toMatchObject({ state: 'toasting', $version: 2 });

      const seen = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
      const message = new Message(JSON.stringify({ temperature: 21.5 }));
      message.properties.add('alert', 'none');
      message.contentType = 'application/json';
      await client.sendEvent(message);
      await seen;
      const [received] = bed.emulator.telemetry(HUB_A, id);
      expect(JSON.parse(received?.body.toString() ?? '')).toEqual({ temperature: 21.5 });
      expect(received?.properties).toMatchObject({ alert: 'none', '$.ct': 'application/json' });
    } finally {
      await client.close();
    }
  });

  it('refuses a device on a hub it was not assigned to, and with another device key', async () => {
    const id = 'hub-toaster-2';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key);
    await expectRefused(bed.emulator, { hub: HUB_B, deviceId: id, key }, 'device-not-found');
    const other = 'hub-toaster-3';
    await register(bed.emulator, other, groupDeviceKey('custom', other));
    await expectRefused(
      bed.emulator,
      { hub: HUB_A, deviceId: id, key: groupDeviceKey('custom', other) },
      'signature-mismatch',
    );
    // A hub that is not linked to the DPS instance at all.
    await expectRefused(bed.emulator, { hub: 'unlinked-hub.azure-devices.net', deviceId: id, key }, 'unknown-hub');
    // Over HTTPS too.
    await expectRefused(bed.emulator, { hub: HUB_B, deviceId: id, key, transport: 'https' }, 'device-not-found');
  });
});

describe('the registry and the HTTP device API', () => {
  it('gets, creates, updates and deletes devices; a deleted device cannot connect', async () => {
    const id = 'hub-registry-1';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key);
    const registry = registryClient(bed.emulator, HUB_A);
    const device = (await registry.get(id)).responseBody;
    expect(device).toMatchObject({
      deviceId: id,
      status: 'enabled',
      connectionState: 'Disconnected',
      authentication: { type: 'sas', symmetricKey: { primaryKey: key } },
    });

    const created = (await registry.create({ deviceId: 'hub-manual-1' })).responseBody;
    expect(created.authentication?.symmetricKey?.primaryKey).toBeTruthy();
    await expect(registry.create({ deviceId: 'hub-manual-1' })).rejects.toMatchObject({
      name: 'DeviceAlreadyExistsError',
    });
    const manual = await deviceClient(bed.emulator, {
      hub: HUB_A,
      deviceId: 'hub-manual-1',
      key: created.authentication?.symmetricKey?.primaryKey as string,
    });
    await manual.open();
    expect((await registry.get('hub-manual-1')).responseBody.connectionState).toBe('Connected');
    await manual.close();

    await registry.delete(id);
    await expect(registry.getTwin(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await expect(registry.delete(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: id, key }, 'device-not-found');
  });

  it('refuses the registry with a wrong key', async () => {
    const badKey = registryClient(
      bed.emulator,
      HUB_A,
      `HostName=${HUB_A};SharedAccessKeyName=iothubowner;SharedAccessKey=${groupDeviceKey('custom', 'not-the-key')}`,
    );
    await expect(badKey.getTwin('hub-toaster-1')).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('accepts telemetry over HTTPS with its properties', async () => {
    const id = 'hub-http-1';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key, { transport: 'https' });
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'https' });
    await client.open();
    const message = new Message('hello over http');
    message.properties.add('kind', 'greeting');
    message.messageId = 'm-1';
    await client.sendEvent(message);
    await client.close();
    const [received] = bed.emulator.telemetry(HUB_A, id);
    expect(received).toMatchObject({ transport: 'https', properties: { kind: 'greeting', '$.mid': 'm-1' } });
    expect(received?.body.toString()).toBe('hello over http');
  });

  it('answers a body over 256 KiB as IoT Hub does (413, MessageTooLarge) and keeps serving', async () => {
    const id = 'hub-http-large';
    const key = groupDeviceKey('custom', id);
    await register(bed.emulator, id, key, { transport: 'https' });
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'https' });
    await client.open();
    try {
      // The bound itself is taken; one byte more is refused before the rest is kept.
      await client.sendEvent(new Message(Buffer.alloc(MAX_HUB_BODY_BYTES, 0x61)));
      const refused = await client.sendEvent(new Message(Buffer.alloc(MAX_HUB_BODY_BYTES + 1, 0x62))).then(
        () => undefined,
        (err: Error & { response?: IncomingMessage; responseBody?: string }) => err,
      );
      expect(refused?.name).toBe('MessageTooLargeError');
      expect(refused?.response?.statusCode).toBe(413);
      expect(refused?.response?.headers['iothub-errorcode']).toBe('MessageTooLarge');
      expect(JSON.parse(String(refused?.responseBody))).toMatchObject({
        Message: `ErrorCode:MessageTooLarge;Message size cannot exceed ${MAX_HUB_BODY_BYTES} bytes.`,
      });
      await client.sendEvent(new Message('after the refusal'));
    } finally {
      await client.close();
    }
    const received = bed.emulator.telemetry(HUB_A, id);
    expect(received.map((m) => m.body.length)).toEqual([MAX_HUB_BODY_BYTES, 'after the refusal'.length]);

    // The registry's bodies have the same bound and answer.
    const registry = registryClient(bed.emulator, HUB_A);
    const big = { properties: { desired: { blob: 'x'.repeat(MAX_HUB_BODY_BYTES) } } };
    await expect(registry.updateTwin(id, big, '*')).rejects.toMatchObject({ response: { statusCode: 413 } });
    expect((await registry.getTwin(id)).responseBody.deviceId).toBe(id);
  });

  it("tells the device SDK that a reported-properties patch was refused, with IoT Hub's error body", async () => {
    // azure-iot-device-mqtt reads a twin answer's status from its body alone (an `errorCode`, as
    // IoT Hub sends: {"errorCode":400004,"trackingId":…,"message":…,"timestampUtc":…}): without
    // one, a refused patch was reported as done, and merged into the SDK's copy of the twin.
    const id = 'twin-refused-patch';
    const registry = registryClient(bed.emulator, HUB_A);
    const key = (await registry.create({ deviceId: id })).responseBody.authentication?.symmetricKey
      ?.primaryKey as string;
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const twin = await client.getTwin();
      const report = reporter(twin);
      const refused = await report({ 'a.b': 1 });
      expect(refused?.message).toBe(
        `property name "a.b" in reported contains '.', '$', a space or a control character`,
      );
      expect(twin.properties.reported).not.toHaveProperty('a.b');
      expect(await report({ ok: true })).toBeUndefined();
    } finally {
      await client.close();
    }
    const { responseBody } = await registry.getTwin(id);
    expect(responseBody.properties.reported).toMatchObject({ ok: true, $version: 2 });
  });

  it('refuses a twin string value over 4 KB from the device and from the registry, and takes one of 4 KB', async () => {
    // "String values are UTF-8 encoded and can have a maximum length of 4 KB" (azure-docs
    // iot-hub-devguide-device-twins, "Tags and properties format").
    const id = 'twin-strings';
    const registry = registryClient(bed.emulator, HUB_A);
    const key = (await registry.create({ deviceId: id })).responseBody.authentication?.symmetricKey
      ?.primaryKey as string;
    const longest = 'x'.repeat(4096);
    const over = `${'€'.repeat(1365)}ab`; // 4,097 bytes
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const twin = await client.getTwin();
      const report = reporter(twin);
      expect(await report({ firmware: longest })).toBeUndefined();
      expect((await report({ firmware: over }))?.message).toBe(
        "reported.firmware is a 4097-byte string, over IoT Hub's 4096-byte limit for a string value",
      );
    } finally {
      await client.close();
    }
    const error = await registry.updateTwin(id, { properties: { desired: { note: over } } }, '*').then(
      () => undefined,
      (err: Error & { responseBody?: unknown }) => err,
    );
    expect({ name: error?.name, message: error?.message }).toEqual({
      name: 'ArgumentError',
      message: "desired.note is a 4097-byte string, over IoT Hub's 4096-byte limit for a string value",
    });
    await registry.updateTwin(id, { tags: { note: longest } }, '*');
    const { responseBody } = await registry.getTwin(id);
    expect(responseBody.properties.reported.firmware).toBe(longest);
    expect(responseBody.properties.desired).not.toHaveProperty('note');
    expect(responseBody.tags).toEqual({ note: longest });
  });

  it('a device whose registration failed (the webhook refused it) exists in no hub', async () => {
    const id = 'wh-400-heat-pump';
    const key = groupDeviceKey('custom', id);
    await expect(register(bed.emulator, id, key)).rejects.toBeTruthy();
    for (const hub of [HUB_A, HUB_B]) {
      await expectRefused(bed.emulator, { hub, deviceId: id, key }, 'device-not-found');
      await expect(registryClient(bed.emulator, hub).get(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    }
  });

  it('serves the same device id on two hubs at once (MQTT sessions are per hub)', async () => {
    const id = 'hub-same-id';
    const registries = [registryClient(bed.emulator, HUB_A), registryClient(bed.emulator, HUB_B)];
    const keys = [] as string[];
    for (const registry of registries) {
      keys.push(
        (await registry.create({ deviceId: id })).responseBody.authentication?.symmetricKey?.primaryKey as string,
      );
    }
    const clients = [
      await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key: keys[0] as string }),
      await deviceClient(bed.emulator, { hub: HUB_B, deviceId: id, key: keys[1] as string }),
    ];
    try {
      for (const client of clients) await client.open();
      for (const client of clients) await client.getTwin();
      for (const registry of registries)
        expect((await registry.get(id)).responseBody.connectionState).toBe('Connected');
    } finally {
      for (const client of clients) await client.close();
    }
  });
});
