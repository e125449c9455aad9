// Module identities and module twins through azure-iothub's Registry (addModule, getModule,
// getModulesOnDevice, updateModule, removeModule, getModuleTwin, updateModuleTwin) against the
// emulated hubs, and the REST answers the SDK cannot show (error codes, the module id rule).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, HUB_B } from '../testing/fixtures.js';
import { registryClient } from '../testing/hub-sdk.js';
import { rawRequest, registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_MODULES_PER_DEVICE } from './core/modules.js';

let bed: TestBedWithWebhook;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** A registry request as the SDK sends it, its answer's status, IoT Hub error code and body. */
async function raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const answer = await rawRequest(bed.emulator, {
    method,
    path: `${path}${path.includes('?') ? '&' : '?'}api-version=2021-04-12`,
    headers: {
      Host: HUB_B,
      Authorization: registryToken(HUB_B),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: answer.status, code: answer.headers['iothub-errorcode'], json: answer.json };
}

describe('module identities through azure-iothub Registry', () => {
  it('adds, reads, lists, updates and removes a module as IoT Hub answers them', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'edge-1' });

    const added = (await registry.addModule({ deviceId: 'edge-1', moduleId: 'sensor' })).responseBody;
    expect(Object.keys(added)).toEqual([
      'moduleId',
      'managedBy',
      'deviceId',
      'generationId',
      'etag',
      'connectionState',
      'connectionStateUpdatedTime',
      'lastActivityTime',
      'cloudToDeviceMessageCount',
      'authentication',
    ]);
    expect(added).toMatchObject({
      moduleId: 'sensor',
      managedBy: null,
      deviceId: 'edge-1',
      etag: 'MA==',
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
      authentication: { type: 'sas', x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } },
    });
    // The SDK sends empty keys, meaning "generate them", as IoT Hub does.
    expect(added.authentication?.symmetricKey?.primaryKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(added.generationId).toMatch(/^\d{18}$/);

    await registry.addModule({ deviceId: 'edge-1', moduleId: 'Sensor', managedBy: 'IoT Edge' });
    await registry.addModule({ deviceId: 'edge-1', moduleId: 'alpha' });
    const listed = (await registry.getModulesOnDevice('edge-1')).responseBody;
    // Module ids are case-sensitive and listed in ordinal order.
    expect(listed.map((m) => m.moduleId)).toEqual(['Sensor', 'alpha', 'sensor']);
    expect(listed[0]?.managedBy).toBe('IoT Edge');
    expect((await registry.getModule('edge-1', 'sensor')).responseBody).toEqual(added);

    // updateModule: with the etag read, then a stale one refused (the SDK's InvalidEtagError).
    const newKey = Buffer.alloc(32, 7).toString('base64');
    const updated = (
      await registry.updateModule({
        ...added,
        authentication: { type: 'sas', symmetricKey: { primaryKey: newKey, secondaryKey: '' } },
      })
    ).responseBody;
    expect(updated.etag).toBe('MQ==');
    expect(updated.generationId).toBe(added.generationId);
    expect(updated.authentication?.symmetricKey?.primaryKey).toBe(newKey);
    // The secondary key was sent empty: kept, as a device's.
    expect(updated.authentication?.symmetricKey?.secondaryKey).toBe(added.authentication?.symmetricKey?.secondaryKey);
    await expect(registry.updateModule({ ...added, managedBy: 'x' })).rejects.toMatchObject({
      name: 'InvalidEtagError',
    });
    await expect(registry.updateModule({ ...added, managedBy: 'x' }, true)).resolves.toBeDefined();
    expect((await registry.getModule('edge-1', 'sensor')).responseBody.managedBy).toBe('x');

    await registry.removeModule('edge-1', 'alpha');
    expect((await registry.getModulesOnDevice('edge-1')).responseBody.map((m) => m.moduleId)).toEqual([
      'Sensor',
      'sensor',
    ]);
    // Registry statistics count devices only.
    expect((await registry.getRegistryStatistics()).responseBody.totalDeviceCount).toBe(
      (await registry.list()).responseBody.length,
    );
  });

  it('refuses what IoT Hub refuses: a module that exists, no module, no device, a bad id, the 21st module, a stale etag', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'edge-2' });
    await registry.addModule({ deviceId: 'edge-2', moduleId: 'm' });

    await expect(registry.addModule({ deviceId: 'edge-2', moduleId: 'm' })).rejects.toMatchObject({
      name: 'DeviceAlreadyExistsError',
    });
    const exists = await raw('PUT', '/devices/edge-2/modules/m', { deviceId: 'edge-2', moduleId: 'm' });
    expect([exists.status, exists.code]).toEqual([409, 'ModuleAlreadyExistsOnDevice']);

    // azure-iothub turns a 404 other than DeviceNotFound into a plain Error('Not found').
    await expect(registry.getModule('edge-2', 'nope')).rejects.toThrow('Not found');
    const missing = await raw('GET', '/devices/edge-2/modules/nope');
    expect([missing.status, missing.code]).toEqual([404, 'ModuleNotFound']);
    expect((missing.json as { Message: string }).Message).toMatch(/^ErrorCode:ModuleNotFound;Module nope not found/);
    const update = await raw('PUT', '/devices/edge-2/modules/nope', {}, { 'If-Match': '*' });
    expect([update.status, update.code]).toEqual([404, 'ModuleNotFound']);
    const remove = await raw('DELETE', '/devices/edge-2/modules/nope', undefined, { 'If-Match': '*' });
    expect([remove.status, remove.code]).toEqual([404, 'ModuleNotFound']);

    await expect(registry.addModule({ deviceId: 'no-device', moduleId: 'm' })).rejects.toMatchObject({
      name: 'DeviceNotFoundError',
    });
    await expect(registry.getModulesOnDevice('no-device')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });

    const badId = await raw('PUT', `/devices/edge-2/modules/${encodeURIComponent('a b')}`, {});
    expect([badId.status, badId.code]).toEqual([400, 'ArgumentInvalid']);
    expect((badId.json as { Message: string }).Message).toContain('Invalid module id');
    const otherId = await raw('PUT', '/devices/edge-2/modules/m2', { moduleId: 'm3' });
    expect([otherId.status, otherId.code]).toEqual([400, 'ArgumentInvalid']);
    const badManagedBy = await raw('PUT', '/devices/edge-2/modules/m2', { managedBy: 7 });
    expect((badManagedBy.json as { Message: string }).Message).toContain('managedBy must be a string');

    const stale = await raw('DELETE', '/devices/edge-2/modules/m', undefined, { 'If-Match': '"MTA="' });
    expect([stale.status, stale.code]).toEqual([412, 'PreconditionFailed']);

    for (let n = 1; n < MAX_MODULES_PER_DEVICE; n++)
      await registry.addModule({ deviceId: 'edge-2', moduleId: `m-${n}` });
    const tooMany = await raw('PUT', '/devices/edge-2/modules/one-more', {});
    expect([tooMany.status, tooMany.code]).toEqual([413, 'TooManyModulesOnDevice']);
    expect((await registry.getModulesOnDevice('edge-2')).responseBody).toHaveLength(MAX_MODULES_PER_DEVICE);

    // Credentials are checked from the headers, for another hub's token too.
    const refused = await raw('GET', '/devices/edge-2/modules', undefined, { Authorization: registryToken(HUB_A) });
    expect(refused.status).toBe(401);
    const notAllowed = await raw('POST', '/devices/edge-2/modules/m', {});
    expect([notAllowed.status, notAllowed.code]).toEqual([405, 'MethodNotAllowed']);
  });

  it('deleting a device deletes its modules: the device created again has none', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'edge-3' });
    await registry.addModule({ deviceId: 'edge-3', moduleId: 'm' });
    await registry.delete('edge-3');
    await registry.create({ deviceId: 'edge-3' });
    expect((await registry.getModulesOnDevice('edge-3')).responseBody).toEqual([]);
    const gone = await raw('GET', '/twins/edge-3/modules/m');
    expect([gone.status, gone.code]).toEqual([404, 'ModuleNotFound']);
  });
});

describe('module twins through azure-iothub Registry', () => {
  it('reads and patches a module twin (tags, desired), its etag checked, apart from the device twin', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'edge-4' });
    await registry.addModule({ deviceId: 'edge-4', moduleId: 'filter' });

    const twin = (await registry.getModuleTwin('edge-4', 'filter')).responseBody;
    expect(twin).toMatchObject({
      deviceId: 'edge-4',
      moduleId: 'filter',
      etag: 'AAAAAAAAAAE=',
      connectionState: 'Disconnected',
      authenticationType: 'sas',
      version: 1,
      tags: {},
      properties: { desired: { $version: 1 }, reported: { $version: 1 } },
    });

    const patched = (
      await registry.updateModuleTwin(
        'edge-4',
        'filter',
        { tags: { site: 'north' }, properties: { desired: { threshold: 5 } } },
        twin.etag,
      )
    ).responseBody;
    expect(patched).toMatchObject({
      moduleId: 'filter',
      version: 3, // tags and desired: one version each, as the device twin's
      tags: { site: 'north' },
      properties: { desired: { threshold: 5, $version: 2 } },
    });
    // The twin read before is stale now: its etag is refused (412, the SDK's InvalidEtagError).
    await expect(
      registry.updateModuleTwin('edge-4', 'filter', { tags: { site: 'south' } }, twin.etag),
    ).rejects.toMatchObject({ name: 'InvalidEtagError' });
    // Twin.update on the module twin the SDK made (PATCH /twins/{id}/modules/{mid} with its etag).
    const sdkTwin = (await registry.getModuleTwin('edge-4', 'filter')).responseBody;
    await sdkTwin.update({ properties: { desired: { threshold: null, mode: 'fast' } } });
    expect((await registry.getModuleTwin('edge-4', 'filter')).responseBody.properties.desired).toMatchObject({
      mode: 'fast',
      $version: 3,
    });
    expect((await registry.getModuleTwin('edge-4', 'filter')).responseBody.properties.desired).not.toHaveProperty(
      'threshold',
    );
    // The device's own twin is untouched.
    expect((await registry.getTwin('edge-4')).responseBody.tags).toEqual({});

    // The twin rules are the device twin's.
    const bad = await raw('PATCH', '/twins/edge-4/modules/filter', { tags: { 'a.b': 1 } });
    expect([bad.status, bad.code]).toEqual([400, 'ArgumentInvalid']);
    const replaced = await raw('PUT', '/twins/edge-4/modules/filter', { tags: { only: true } });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ tags: { only: true }, properties: { desired: { $version: 4 } } });
    const noModule = await raw('PATCH', '/twins/edge-4/modules/none', { tags: {} });
    expect([noModule.status, noModule.code]).toEqual([404, 'ModuleNotFound']);
    const noDevice = await raw('GET', '/twins/none/modules/filter');
    expect([noDevice.status, noDevice.code]).toEqual([404, 'DeviceNotFound']);
  });

  it('a device twin path naming a module ({deviceId}%2F{moduleId}) is no device: 404 DeviceNotFound, the module twin untouched', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    await registry.create({ deviceId: 'edge-5' });
    await registry.addModule({ deviceId: 'edge-5', moduleId: 'filter' });
    const path = `/twins/${encodeURIComponent('edge-5/filter')}`;
    for (const method of ['GET', 'PATCH', 'PUT']) {
      const answer = await raw(method, path, method === 'GET' ? undefined : { tags: { via: 'device path' } });
      expect([method, answer.status, answer.code]).toEqual([method, 404, 'DeviceNotFound']);
    }
    expect((await registry.getModuleTwin('edge-5', 'filter')).responseBody).toMatchObject({ version: 1, tags: {} });
  });
});

describe('module twin queries through azure-iothub Registry.createQuery', () => {
  it('answers SELECT … FROM devices.modules: module twins (nextAsTwin updates them), projections, counts', async () => {
    const registry = registryClient(bed.emulator, HUB_B);
    for (const deviceId of ['edge-q1', 'edge-q2']) {
      await registry.create({ deviceId });
      for (const moduleId of ['$edgeAgent', 'filter']) await registry.addModule({ deviceId, moduleId });
    }
    await registry.updateModuleTwin('edge-q2', 'filter', { tags: { site: 'north' } }, '*');

    const query = registry.createQuery("SELECT * FROM devices.modules WHERE STARTSWITH(deviceId, 'edge-q')", 1);
    const twins = [];
    while (query.hasMoreResults) twins.push(...(await query.nextAsTwin()).result);
    expect(twins.map((t) => `${t.deviceId}/${t.moduleId}`)).toEqual([
      'edge-q1/$edgeAgent',
      'edge-q1/filter',
      'edge-q2/$edgeAgent',
      'edge-q2/filter',
    ]);
    // The SDK's Twin of a module twin updates that module twin.
    await twins[1]?.update({ tags: { site: 'south' } });
    expect((await registry.getModuleTwin('edge-q1', 'filter')).responseBody.tags).toEqual({ site: 'south' });

    const sites = await registry
      .createQuery(
        "SELECT deviceId, moduleId, tags.site AS site FROM devices.modules WHERE moduleId = 'filter' AND IS_DEFINED(tags.site)",
      )
      .next();
    expect(sites.result).toEqual([
      { deviceId: 'edge-q1', moduleId: 'filter', site: 'south' },
      { deviceId: 'edge-q2', moduleId: 'filter', site: 'north' },
    ]);
    const counted = await registry
      .createQuery(
        "SELECT COUNT() AS n FROM devices.modules WHERE moduleId = '$edgeAgent' AND STARTSWITH(deviceId, 'edge-q')",
      )
      .next();
    expect(counted.result).toEqual([{ n: 2 }]);
  });
});
