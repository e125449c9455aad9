import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_C } from '../testing/fixtures.js';
import { deviceClient, registryClient } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// azure-iothub's Registry.createQuery (POST /devices/query) against an emulated hub, with the
// official SDK: nextAsTwin() and next() paging through x-ms-continuation, as users' tests call it.

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
  const registry = registryClient(bed.emulator, HUB_C);
  const regions: Record<string, string> = { 'q-us-1': 'US', 'q-us-2': 'US', 'q-eu-1': 'EU', 'q-us-3': 'US' };
  for (const [deviceId, region] of Object.entries(regions)) {
    const key = (await registry.create({ deviceId })).responseBody.authentication?.symmetricKey?.primaryKey as string;
    await registry.updateTwin(deviceId, { tags: { location: { region } } }, '*');
    if (deviceId !== 'q-us-3') {
      // The device reports its connectivity over MQTT.
      const client = await deviceClient(bed.emulator, { hub: HUB_C, deviceId, key });
      await client.open();
      try {
        const twin = await client.getTwin();
        const type = deviceId === 'q-us-2' ? 'wired' : 'cellular';
        await new Promise<void>((resolve, reject) =>
          twin.properties.reported.update({ connectivity: { type } }, (err?: Error) => (err ? reject(err) : resolve())),
        );
      } finally {
        await client.close();
      }
    }
  }
  await registry.create({ deviceId: 'q-off', status: 'disabled' });
});
afterAll(async () => {
  await bed?.close();
});

describe('Registry.createQuery on an emulated hub', () => {
  it("answers azure-docs' example query as twins, paging by the page size the SDK sends", async () => {
    const registry = registryClient(bed.emulator, HUB_C);
    const query = registry.createQuery(
      "SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.connectivity.type = 'cellular'",
    );
    const { result: twins, message } = await query.nextAsTwin();
    expect(twins.map((t) => t.deviceId)).toEqual(['q-us-1']);
    expect(twins[0]?.tags).toEqual({ location: { region: 'US' } });
    expect(message.headers['x-ms-item-type']).toBe('twin');
    expect(query.hasMoreResults).toBe(false);

    const paged = registry.createQuery("SELECT * FROM devices WHERE tags.location.region IN ['US', 'EU']", 2);
    const pages: string[][] = [];
    while (paged.hasMoreResults) pages.push((await paged.nextAsTwin()).result.map((t) => t.deviceId));
    expect(pages).toEqual([
      ['q-eu-1', 'q-us-1'],
      ['q-us-2', 'q-us-3'],
    ]);

    // A twin from a query updates as any other (Twin.update: PATCH with its etag).
    const [twin] = (await registry.createQuery("SELECT * FROM devices WHERE deviceId = 'q-us-3'").nextAsTwin()).result;
    await twin?.update({ tags: { updated: true } });
    expect((await registry.getTwin('q-us-3')).responseBody.tags).toMatchObject({ updated: true });
  });

  it('counts, groups and projects (next(): raw JSON)', async () => {
    const registry = registryClient(bed.emulator, HUB_C);
    const count = await registry.createQuery("SELECT COUNT() AS n FROM devices WHERE status = 'enabled'").next();
    expect(count.result).toEqual([{ n: 4 }]);
    expect(count.message.headers['x-ms-item-type']).toBe('raw');
    const groups = await registry
      .createQuery(
        'SELECT properties.reported.connectivity.type AS type, COUNT() AS n FROM devices WHERE IS_DEFINED(properties.reported.connectivity) GROUP BY properties.reported.connectivity.type',
      )
      .next();
    expect(groups.result).toEqual([
      { type: 'cellular', n: 2 },
      { type: 'wired', n: 1 },
    ]);
    const projected = await registry
      .createQuery("SELECT deviceId, status FROM devices WHERE STARTSWITH(deviceId, 'q-o')")
      .next();
    expect(projected.result).toEqual([{ deviceId: 'q-off', status: 'disabled' }]);
  });

  it("refuses a query it does not serve with IoT Hub's 400 (ArgumentError in the SDK) naming the cause, and goes on serving", async () => {
    const registry = registryClient(bed.emulator, HUB_C);
    const refused = await registry
      .createQuery('SELECT TOP 1 * FROM devices')
      .next()
      .then(
        () => undefined,
        (err: Error & { responseBody?: string; response?: { statusCode?: number; headers: Record<string, string> } }) =>
          err,
      );
    expect(refused?.name).toBe('ArgumentError');
    expect(refused?.response?.statusCode).toBe(400);
    expect(refused?.response?.headers['iothub-errorcode']).toBe('ArgumentInvalid');
    expect(refused?.message).toMatch(/TOP \(position 8\) is not served/);
    expect(JSON.parse(refused?.responseBody ?? '{}').Message).toMatch(/^ErrorCode:ArgumentInvalid;TOP \(position 8\)/);
    expect((await registry.createQuery('SELECT COUNT() AS n FROM devices').next()).result).toEqual([{ n: 5 }]);
  });

  it('checks the credentials (RegistryRead) from the headers, and the body and paging headers by name', async () => {
    const query = (headers: Record<string, string>, body: string) =>
      rawRequest(bed.emulator, {
        method: 'POST',
        path: '/devices/query?api-version=2021-04-12',
        headers: { Host: HUB_C, Authorization: registryToken(HUB_C), ...headers },
        body,
      });
    const unauthorized = await query({ Authorization: 'SharedAccessSignature sr=x&sig=y&se=1&skn=iothubowner' }, '{');
    expect(unauthorized.status).toBe(401);
    const notJson = await query({}, '{');
    expect(notJson.status).toBe(400);
    const noQuery = await query({}, '{"sql":"SELECT * FROM devices"}');
    expect(noQuery.status).toBe(400);
    expect((noQuery.json as { Message: string }).Message).toMatch(/"query" is the query text/);
    const badSize = await query({ 'x-ms-max-item-count': 'many' }, '{"query":"SELECT * FROM devices"}');
    expect(badSize.status).toBe(400);
    expect((badSize.json as { Message: string }).Message).toMatch(
      /^ErrorCode:ArgumentInvalid;Invalid x-ms-max-item-count "many"/,
    );
    const badToken = await query({ 'x-ms-continuation': 'abc' }, '{"query":"SELECT * FROM devices"}');
    expect((badToken.json as { Message: string }).Message).toMatch(/Invalid x-ms-continuation "abc"/);
    const page = await query({ 'x-ms-max-item-count': '1' }, '{"query":"SELECT deviceId FROM devices"}');
    expect(page.status).toBe(200);
    expect(page.json).toEqual([{ deviceId: 'q-eu-1' }]);
    expect(page.headers['x-ms-max-item-count']).toBe('1');
    expect(typeof page.headers['x-ms-continuation']).toBe('string');
    // A device named "query" is still a device: GET /devices/query is that device's.
    const device = await rawRequest(bed.emulator, {
      method: 'GET',
      path: '/devices/query?api-version=2021-04-12',
      headers: { Host: HUB_C, Authorization: registryToken(HUB_C) },
    });
    expect(device.status).toBe(404);
    expect(device.headers['iothub-errorcode']).toBe('DeviceNotFound');
  });
});
