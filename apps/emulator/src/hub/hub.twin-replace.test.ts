import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_B } from '../testing/fixtures.js';
import { deviceClient, registryClient, reporter } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// PUT /twins/{id}: replacing a twin's tags and desired properties, as the C# SDK's ReplaceTwinAsync
// and Python's replace_twin send it (azure-iothub for Node has no replaceTwin: a plain HTTPS PUT with
// the registry's token), seen by azure-iothub's getTwin and by an azure-iot-device MQTT client.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

const put = (deviceId: string, body: unknown, ifMatch?: string) =>
  rawRequest(bed.emulator, {
    method: 'PUT',
    path: `/twins/${deviceId}?api-version=2021-04-12`,
    headers: { Host: HUB_B, Authorization: registryToken(HUB_B), ...(ifMatch ? { 'If-Match': ifMatch } : {}) },
    body: JSON.stringify(body),
  });

describe('replacing a twin (PUT /twins/{id})', () => {
  it('replaces tags and desired properties whole; the device gets the change, removed properties as null', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    const key = (await registry.create({ deviceId: 'replace-1' })).responseBody.authentication?.symmetricKey
      ?.primaryKey as string;
    await registry.updateTwin(
      'replace-1',
      { tags: { a: 1, b: 2 }, properties: { desired: { keep: 1, drop: 2 } } },
      '*',
    );
    const client = await deviceClient(bed.emulator, { hub: HUB_B, deviceId: 'replace-1', key });
    await client.open();
    try {
      const twin = await client.getTwin();
      const pushed = new Promise<Record<string, unknown>>((resolve) =>
        twin.on('properties.desired', (delta: Record<string, unknown>) => {
          if (delta.added === 3) resolve(delta);
        }),
      );
      const before = (await registry.getTwin('replace-1')).responseBody;
      // As the C# SDK sends a twin it read: reported properties, $metadata and $version included.
      const { desired, reported } = before.properties;
      const replaced = await put(
        'replace-1',
        {
          deviceId: before.deviceId,
          etag: before.etag,
          status: 'enabled',
          tags: { c: 3 },
          properties: { desired: { ...desired, keep: 10, drop: undefined, added: 3 }, reported },
        },
        before.etag,
      );
      expect(replaced.status).toBe(200);
      expect(replaced.json).toMatchObject({
        deviceId: 'replace-1',
        tags: { c: 3 },
        properties: { desired: { keep: 10, added: 3 } },
      });
      const after = (await registry.getTwin('replace-1')).responseBody;
      expect(after.tags).toEqual({ c: 3 });
      expect(after.properties.desired).toMatchObject({ keep: 10, added: 3 });
      expect(after.properties.desired).not.toHaveProperty('drop');
      expect(await pushed).toMatchObject({ keep: 10, added: 3, drop: null });
      // The device's copy now has no "drop".
      expect(twin.properties.desired).not.toHaveProperty('drop');
      // The old etag no longer matches.
      const stale = await put('replace-1', { tags: {} }, before.etag);
      expect(stale.status).toBe(412);
      expect(stale.headers['iothub-errorcode']).toBe('PreconditionFailed');
    } finally {
      await client.close();
    }
  });

  it('refuses what IoT Hub refuses in a twin, naming it; an absent device is 404', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'replace-2' });
    const nulls = await put('replace-2', { tags: { a: null } }, '*');
    expect(nulls.status).toBe(400);
    expect((nulls.json as { Message: string }).Message).toMatch(/^ErrorCode:ArgumentInvalid;.*tags\.a/);
    const notObject = await put('replace-2', [1], '*');
    expect(notObject.status).toBe(400);
    expect((await put('replace-none', { tags: {} }, '*')).status).toBe(404);
    expect((await registry.getTwin('replace-2')).responseBody.tags).toEqual({});
  });
});

describe('a twin as the C# SDK sends it (a Twin object: reported properties, $metadata and $version in it)', () => {
  it('PATCH and PUT take it: desired and tags change, the reported properties stay as the device reported them', async () => {
    const id = 'csharp-twin';
    const registry = registryClient(bed.emulator, HUB_B);
    const key = (await registry.create({ deviceId: id })).responseBody.authentication?.symmetricKey
      ?.primaryKey as string;
    const client = await deviceClient(bed.emulator, { hub: HUB_B, deviceId: id, key });
    await client.open();
    try {
      expect(await reporter(await client.getTwin())({ firmware: '1.0' })).toBeUndefined();
      const patch = (body: unknown, ifMatch: string) =>
        rawRequest(bed.emulator, {
          method: 'PATCH',
          path: `/twins/${id}?api-version=2021-04-12`,
          headers: { Host: HUB_B, Authorization: registryToken(HUB_B), 'If-Match': ifMatch },
          body: JSON.stringify(body),
        });
      // `var twinPatch = new Twin(); twinPatch.Properties.Desired["speed"] = 1; UpdateTwinAsync(id, twinPatch, etag)`
      // (the docs' sample): TwinJsonConverter writes the empty reported collection too.
      const fresh = await patch(
        { deviceId: null, etag: null, version: null, properties: { desired: { speed: 1 }, reported: {} } },
        '*',
      );
      expect(fresh.status).toBe(200);
      // GetTwinAsync, a desired property set, UpdateTwinAsync(twin.DeviceId, twin, twin.ETag): the twin read,
      // whole. Its reported properties changed on the way must not reach the twin.
      // The twin as the hub answers GET (the JSON the SDK's Twin holds).
      const get = async () =>
        (
          await rawRequest(bed.emulator, {
            method: 'GET',
            path: `/twins/${id}?api-version=2021-04-12`,
            headers: { Host: HUB_B, Authorization: registryToken(HUB_B) },
          })
        ).json as { etag: string; properties: { desired: Record<string, unknown>; reported: Record<string, unknown> } };
      const read = await get();
      const { desired, reported } = read.properties;
      const whole = await patch(
        {
          ...read,
          tags: { site: 'north' },
          properties: { desired: { ...desired, speed: 2 }, reported: { ...reported, firmware: 'forged' } },
        },
        read.etag,
      );
      expect(whole.status).toBe(200);
      let twin = await get();
      expect(twin).toMatchObject({ tags: { site: 'north' } });
      expect(twin.properties.desired).toMatchObject({ speed: 2 });
      expect(twin.properties.reported).toMatchObject({ firmware: '1.0', $version: reported.$version });
      // ReplaceTwinAsync with the same kind of body.
      const replaced = await put(
        id,
        { ...twin, properties: { desired: { speed: 3 }, reported: { firmware: 'forged', extra: true } } },
        twin.etag,
      );
      expect(replaced.status).toBe(200);
      twin = await get();
      expect(twin.properties.desired).toMatchObject({ speed: 3 });
      expect(twin.properties.reported).toMatchObject({ firmware: '1.0', $version: reported.$version });
      expect(twin.properties.reported).not.toHaveProperty('extra');
    } finally {
      await client.close();
    }
  });
});
