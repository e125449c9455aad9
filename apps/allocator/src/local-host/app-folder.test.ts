import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
import { TOASTER_BODY } from '../testing/tutorial-requests.js';
import { ALLOCATOR_SOURCE, writeUserApp } from '../testing/user-app.js';
import { type AllocatorHost, startAllocatorHost } from './allocator-host.js';
import { loadFunctionApp } from './registry.js';

/** A user's app: its own policy in one call, a plain app.get function, and a timer the host cannot serve. */
const POLICY_MODULE = `
import { accept, registerAllocationFunction, reject } from '${ALLOCATOR_SOURCE}';

export const assign = registerAllocationFunction('assign', {
  policy: (request) => {
    const firmware = request.deviceRuntimeContext.payload?.firmware;
    if (typeof firmware !== 'string') return reject('No firmware version in the payload.');
    const hub = firmware.startsWith('2.') ? request.linkedHubs[1] : request.linkedHubs[0];
    return accept({ iotHubHostName: hub, initialTwin: { properties: { desired: { channel: process.env.CHANNEL } } } });
  },
});
`;
const PLAIN_MODULE = `
import { app } from '@azure/functions';

// Registered only: nothing exported, as Microsoft's templates write it.
app.get('health', { authLevel: 'anonymous', route: 'health/{part?}', handler: async (request) => ({
  jsonBody: { ok: true, part: request.params.part ?? null },
}) });
app.timer('nightly', { schedule: '0 0 0 * * *', handler: () => {} });
`;

function allocationBody(firmware: unknown): string {
  return JSON.stringify({
    enrollmentGroup: { enrollmentGroupId: 'group', attestation: { type: 'symmetricKey' } },
    deviceRuntimeContext: { registrationId: 'device-1', symmetricKey: {}, payload: { firmware } },
    linkedHubs: ['hub-a.azure-devices.net', 'hub-b.azure-devices.net'],
  });
}

describe('the local host serving a user app folder', () => {
  let appDir: string;
  let host: AllocatorHost;
  const logs: AllocatorLogRecord[] = [];

  beforeAll(async () => {
    delete process.env.CHANNEL;
    process.env.ALREADY_SET = 'from-the-environment';
    appDir = await writeUserApp({
      hostJson: { version: '2.0', extensions: { http: { routePrefix: 'hooks' } } },
      localSettings: { IsEncrypted: false, Values: { CHANNEL: 'beta', ALREADY_SET: 'from-local-settings' } },
      files: {
        'dist/src/functions/assign.js': POLICY_MODULE,
        'dist/src/functions/health.js': PLAIN_MODULE,
        'dist/src/functions/assign.test.js': 'throw new Error("tests are not function modules");',
        'dist/src/lib/unused.js': 'throw new Error("not matched by main");',
      },
    });
    host = await startAllocatorHost({ appDir, port: 0, functionKey: 'user-key', log: (r) => logs.push(r) });
  });

  afterAll(async () => {
    await host?.close();
    delete process.env.ALREADY_SET;
    if (appDir) await rm(appDir, { recursive: true, force: true });
  });

  it('serves every HTTP function the app registered, on its route prefix, and names the webhook URL', () => {
    expect(host.functions).toEqual([
      { name: 'assign', methods: ['POST'], authLevel: 'function', url: `${host.url}/hooks/assign` },
      { name: 'health', methods: ['GET'], authLevel: 'anonymous', url: `${host.url}/hooks/health/{part?}` },
    ]);
    expect(host.webhookUrl).toBe(`${host.url}/hooks/assign?code=user-key`);
    expect(logs.some((r) => r.level === 'warn' && r.msg.includes("Function 'nightly' is not served"))).toBe(true);
  });

  it('answers as the policy decides, with its local.settings.json values in process.env', async () => {
    const res = await fetch(host.webhookUrl, { method: 'POST', body: allocationBody('2.1.0') });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      iotHubHostName: 'hub-b.azure-devices.net',
      initialTwin: { properties: { desired: { channel: 'beta' } } },
    });
    const rejected = await fetch(host.webhookUrl, { method: 'POST', body: allocationBody(7) });
    expect([rejected.status, await rejected.text()]).toEqual([400, 'No firmware version in the payload.']);
    // Variables already in the environment win over local.settings.json, as with Core Tools.
    expect(process.env.ALREADY_SET).toBe('from-the-environment');
  });

  it('gives the user function the same validation, logging and key check as the tutorial', async () => {
    const invalid = await fetch(host.webhookUrl, { method: 'POST', body: '{"linkedHubs":[]}' });
    expect(invalid.status).toBe(400);
    expect(await invalid.text()).toContain('Invalid allocation request: ');
    expect((await fetch(`${host.url}/hooks/assign`, { method: 'POST', body: TOASTER_BODY })).status).toBe(401);
    const fnLogs = logs.filter((r) => r.source === 'function' && r.functionName === 'assign').map((r) => r.msg);
    expect(fnLogs).toContain('Selected hub');
    expect(fnLogs).toContain('Rejected');
  });

  it('serves plain app.get functions with route parameters and no key', async () => {
    const res = await fetch(`${host.url}/hooks/health/db`);
    expect([res.status, await res.json()]).toEqual([200, { ok: true, part: 'db' }]);
  });

  it('loads the same app again in the same process (a module registers once)', async () => {
    const again = await startAllocatorHost({ appDir, port: 0, functionName: 'assign' });
    try {
      expect(again.functions.map((f) => f.name)).toEqual(['assign', 'health']);
    } finally {
      await again.close();
    }
  });
});

describe('app folders that cannot be served', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const app = async (files: Parameters<typeof writeUserApp>[0]): Promise<string> => {
    const dir = await writeUserApp(files);
    dirs.push(dir);
    return dir;
  };

  it('names a main that matches nothing (an unbuilt app)', async () => {
    const dir = await app({ files: {} });
    await expect(loadFunctionApp(dir)).rejects.toThrow(
      `No file matches package.json "main" "dist/src/functions/*.js" in ${dir} (is the app built?).`,
    );
  });

  it('names a missing host.json, a missing main and a module that fails to load', async () => {
    const noMain = await app({ packageJson: { main: undefined }, files: {} });
    await expect(loadFunctionApp(noMain)).rejects.toThrow('has no "main"');
    const broken = await app({ files: { 'dist/src/functions/a.js': "import 'not-installed-package';" } });
    await expect(loadFunctionApp(broken)).rejects.toThrow(
      `Could not load ${path.join('dist', 'src', 'functions', 'a.js')} (from package.json "main"): `,
    );
    await expect(startAllocatorHost({ appDir: path.join(broken, 'nope'), port: 0 })).rejects.toThrow(
      /host\.json could not be read/,
    );
  });

  it('refuses an app that registers no HTTP function, or several POST functions without a choice', async () => {
    const none = await app({ files: { 'dist/src/functions/a.js': 'export const nothing = 1;' } });
    await expect(startAllocatorHost({ appDir: none, port: 0 })).rejects.toThrow('registers no HTTP function');
    const two = await app({
      files: {
        'dist/src/functions/a.js': `import { app } from '@azure/functions';
app.post('one', { handler: () => ({}) });
app.post('two', { handler: () => ({}) });`,
      },
    });
    await expect(startAllocatorHost({ appDir: two, port: 0 })).rejects.toThrow(
      'several functions that take POST (one, two): name the webhook with functionName (--function)',
    );
    const host = await startAllocatorHost({ appDir: two, port: 0, functionName: 'two' });
    try {
      expect(host.webhookUrl).toMatch(/\/api\/two\?code=/);
    } finally {
      await host.close();
    }
  });
});
