// The emulated hub's twins against IoT Hub's documented rules (azure-docs
// iot-hub-devguide-device-twins), through the official SDKs: azure-iot-device + -mqtt for the
// device's reported properties, azure-iothub's Registry for tags and desired properties.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, registryClient, reporter } from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** The registry call's error (name and message), or undefined when it succeeded. */
async function failure(call: Promise<unknown>): Promise<{ name: string; message: string } | undefined> {
  return call.then(
    () => undefined,
    (err: Error) => ({ name: err.name, message: err.message }),
  );
}

describe("twin size by IoT Hub's measure (keys and values, not JSON text)", () => {
  it('takes 32 KB of reported properties whose JSON is longer, refuses one byte more', async () => {
    const id = 'twin-size-reported';
    const registry = registryClient(bed.emulator, HUB_A);
    const key = await createDeviceKey(registry, id);
    // 8 × (2-byte key + 4,094-byte string) = 32,768 by the measure; 32,817 bytes of JSON.
    const at = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(4094)]));
    expect(Buffer.byteLength(JSON.stringify(at))).toBe(32_817);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const report = reporter(await client.getTwin());
      expect(await report(at)).toBeUndefined();
      expect((await report({ z: '' }))?.message).toBe(
        "reported would be 32769 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
      );
    } finally {
      await client.close();
    }
    const { responseBody } = await registry.getTwin(id);
    expect(responseBody.properties.reported).toMatchObject({ ...at, $version: 2 });
    expect(responseBody.properties.reported).not.toHaveProperty('z');
  });

  it('refuses desired properties and tags of numbers over the limit though their JSON is under it', async () => {
    const id = 'twin-size-numbers';
    const registry = registryClient(bed.emulator, HUB_A);
    await createDeviceKey(registry, id);
    const numbered = (prefix: string, count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${String(i).padStart(4, '0')}`, 7]));
    // 2,600 × (5-byte key + 8 a number) = 33,800; 26,001+ bytes of JSON.
    const desired = numbered('d', 2600);
    expect(Buffer.byteLength(JSON.stringify(desired))).toBeLessThan(32 * 1024);
    expect(await failure(registry.updateTwin(id, { properties: { desired } }, '*'))).toEqual({
      name: 'ArgumentError',
      message: "desired is 33800 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
    });
    // Tags: 700 × 13 = 9,100 over 8 KB; under 8 KB of JSON.
    const tags = numbered('t', 700);
    expect(Buffer.byteLength(JSON.stringify(tags))).toBeLessThan(8 * 1024);
    expect(await failure(registry.updateTwin(id, { tags }, '*'))).toEqual({
      name: 'ArgumentError',
      message: "tags is 9100 bytes by IoT Hub's twin size measure, over its 8192-byte limit",
    });
    // 2,520 numbers (32,760) are taken.
    await registry.updateTwin(id, { properties: { desired: numbered('d', 2520) } }, '*');
    const { responseBody } = await registry.getTwin(id);
    expect(Object.keys(responseBody.properties.desired).filter((k) => k.startsWith('d'))).toHaveLength(2520);
    expect(responseBody.tags).toEqual({});
  });
});

describe("integers outside IoT Hub's range (-2^52 to 2^52 - 1)", () => {
  const range = "outside IoT Hub's integer range (-4503599627370496 to 4503599627370495)";

  it('refuses them from the device and from the registry, naming the property; takes the range and floats', async () => {
    // As in azure-iot-sdk-csharp#2958: a serial number the SDK serializes as an integer, which
    // JSON.parse would have stored rounded (5283920058631410000 is no double).
    const id = 'twin-big-integers';
    const registry = registryClient(bed.emulator, HUB_A);
    const key = await createDeviceKey(registry, id);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const report = reporter(await client.getTwin());
      expect((await report({ info: { serial: 5283920058631410000 } }))?.message).toBe(
        `reported.info.serial is 5283920058631410000, ${range}`,
      );
      expect((await report({ low: -(2 ** 52) - 1 }))?.message).toBe(`reported.low is -4503599627370497, ${range}`);
      // The ends of the range; 1e21 and up are sent in exponent form, as floats.
      expect(await report({ max: 2 ** 52 - 1, min: -(2 ** 52), far: 1e21 })).toBeUndefined();
    } finally {
      await client.close();
    }
    expect(await failure(registry.updateTwin(id, { properties: { desired: { big: 2 ** 60 } } }, '*'))).toEqual({
      name: 'ArgumentError',
      // What the SDK sends for 2 ** 60 (JSON.stringify's shortest form): the literal is named as sent.
      message: `desired.big is 1152921504606847000, ${range}`,
    });
    expect(await failure(registry.updateTwin(id, { tags: { list: [1, 2 ** 53 + 2] } }, '*'))).toEqual({
      name: 'ArgumentError',
      message: `tags.list[1] is 9007199254740994, ${range}`,
    });
    const { responseBody } = await registry.getTwin(id);
    expect(responseBody.properties.reported).toMatchObject({ max: 2 ** 52 - 1, min: -(2 ** 52), far: 1e21 });
    expect(responseBody.properties.reported).not.toHaveProperty('info');
    expect(responseBody.properties.desired).not.toHaveProperty('big');
    expect(responseBody.tags).toEqual({});
  });
});
