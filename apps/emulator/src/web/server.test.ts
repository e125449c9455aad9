import http from 'node:http';
import { generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatBanner } from '../cli/banner.js';
import type { AttemptEntry, AttemptSummary } from '../core/attempts.js';
import { WELL_KNOWN_SERVICE_KEY } from '../core/service-auth.js';
import { WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';
import { groupDeviceKey, HUB_A, KEYS, WEBHOOK_TWIN } from '../testing/fixtures.js';
import { moduleClient } from '../testing/hub-module-sdk.js';
import { deviceClient, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { serviceClient as dpsServiceClient } from '../testing/service-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import type { HubDeviceDetail, HubDeviceSummary } from './hub-views.js';
import type { EnrollmentView, WebViewOverview } from './views.js';

let bed: TestBedWithWebhook;
/** Every body the web view answered in this file, to look for secrets in at the end. */
const answered: string[] = [];
/** Keys of the module identities the tests added, looked for in every answer at the end. */
const moduleKeys: string[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});

afterAll(async () => {
  await bed?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A GET (or another method) to the web view, with the Host header a browser would send unless given. */
function request(
  path: string,
  options: { method?: string; host?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const base = new URL(bed.emulator.webViewUrl ?? '');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? base.host, ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          answered.push(text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function json<T>(path: string): Promise<T> {
  const answer = await request(path);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  return JSON.parse(answer.text) as T;
}

/** The live stream: what it sent so far, a wait for its `ready` message, a wait for some text. */
function openStream(path: string, headers: Record<string, string> = {}) {
  const base = new URL(bed.emulator.webViewUrl ?? '');
  let text = '';
  const waiters: { until: (text: string) => boolean; resolve: (text: string) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      if (!waiter.until(text)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(text);
    }
  };
  const req = http.get({ host: base.hostname, port: base.port, path, headers }, (res) => {
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    res.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      check();
    });
  });
  req.on('error', () => {});
  const waitFor = (until: (text: string) => boolean) =>
    new Promise<string>((resolve) => {
      waiters.push({ until, resolve });
      check();
    });
  return {
    ready: waitFor((t) => t.includes('event: ready')),
    waitFor,
    close() {
      answered.push(text);
      req.destroy();
    },
  };
}

/** The `attempts` events of a stream's text, in order. */
function streamedAttempts(text: string): AttemptSummary[] {
  return streamed<AttemptSummary[]>(text, 'attempts').flat();
}

/** The data of a stream's (complete) events of one kind, in order. */
function streamed<T>(text: string, event: string): T[] {
  return text
    .split('\n\n')
    .slice(0, -1)
    .filter((block) => block.includes(`event: ${event}\n`))
    .map((block) => JSON.parse(block.slice(block.indexOf('data: ') + 6)) as T);
}

/** The last event id a stream sent. */
function lastEventId(text: string): string {
  return [...text.matchAll(/^id: (.+)$/gm)].at(-1)?.[1] ?? '';
}

/** The web view answers as the store changes, which takes its time on a loaded machine: never a fixed wait. */
const poll = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 60_000, interval: 100 });

describe('the web view API', () => {
  it('lists every attempt and opens one with the exact webhook exchange, payload and registration state', async () => {
    const payload = { firmware: '1.2.3' };
    await register(bed.emulator, 'web-ok-1', groupDeviceKey('custom', 'web-ok-1'), { payload });
    await rejectionOf(register(bed.emulator, 'wh-400-web', groupDeviceKey('custom', 'wh-400-web'), { payload }));

    const attempts = await json<AttemptSummary[]>('/api/attempts');
    const ok = attempts.findLast((a) => a.registrationId === 'web-ok-1');
    const failed = attempts.findLast((a) => a.registrationId === 'wh-400-web');
    expect(ok).toMatchObject({
      transport: 'mqtt',
      enrollment: { kind: 'group', id: 'custom-group' },
      policy: 'custom',
      status: 'assigned',
      assignedHub: 'hub-a.azure-devices.net',
      webhook: { status: 200, attempts: 1, url: expect.stringMatching(/\/api\/allocate\?\*\*\*\*$/) },
    });
    expect(failed).toMatchObject({
      status: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 400',
    });
    expect(failed?.seq).toBeGreaterThan(ok?.seq ?? Number.POSITIVE_INFINITY);

    const detail = await json<AttemptEntry>(`/api/attempts/${failed?.seq}`);
    const sent = bed.webhook.callsFor('wh-400-web').at(-1);
    // The body exactly as the webhook received it, and the answer exactly as it sent it.
    expect(detail.detail.webhook?.request.body.text).toBe(sent?.rawBody);
    expect(detail.detail.webhook?.response).toEqual({ status: 400, body: { text: '{"message":"bad device"}' } });
    expect(JSON.parse(detail.detail.devicePayload?.text ?? '')).toEqual(payload);
    expect(JSON.parse(detail.detail.registrationState?.text ?? '')).toMatchObject({
      registrationId: 'wh-400-web',
      status: 'failed',
      errorCode: 400207,
    });

    const okDetail = await json<AttemptEntry>(`/api/attempts/${ok?.seq}`);
    expect(JSON.parse(okDetail.detail.webhook?.response?.body.text ?? '')).toMatchObject({
      iotHubHostName: 'hub-a.azure-devices.net',
    });
    expect(JSON.parse(okDetail.detail.initialTwin?.text ?? '')).toEqual({
      tags: { deviceType: 'toaster' },
      properties: { desired: { state: 'ready' } },
    });
  });

  it('lists enrollments with attestation, policy, masked webhook URL, hubs, twin, status and registration counts', async () => {
    await register(bed.emulator, 'web-counted', groupDeviceKey('hashed', 'web-counted'));
    const { groups, individuals } = await json<{ groups: EnrollmentView[]; individuals: EnrollmentView[] }>(
      '/api/enrollments',
    );
    const custom = groups.find((g) => g.id === 'custom-group');
    expect(custom).toMatchObject({
      kind: 'group',
      attestationType: 'symmetricKey',
      allocationPolicy: 'custom',
      webhookUrl: `${new URL(bed.webhook.url).origin}/api/allocate?****`,
      webhookApiVersion: '2021-10-01',
      iotHubs: ['hub-a.azure-devices.net', 'hub-b.azure-devices.net'],
      initialTwin: { tags: { fleet: 'contoso' } },
      provisioningStatus: 'enabled',
    });
    expect(custom?.registrations).toBeGreaterThanOrEqual(1);
    expect(groups.find((g) => g.id === 'hashed-group')?.registrations).toBeGreaterThanOrEqual(1);
    expect(groups.find((g) => g.id === 'disabled-group')).toMatchObject({ provisioningStatus: 'disabled' });
    expect(individuals.find((i) => i.id === 'individual-device-1')).toMatchObject({
      kind: 'individual',
      deviceId: 'individual-hub-device-id',
      allocationPolicy: 'static',
      registrations: 0,
    });
    expect(JSON.stringify(groups)).not.toContain('primaryKey');
  });

  it("masks an enrollment key created after the wall clock was set back (the secrets list's age is monotonic)", async () => {
    const id = 'web-clock-back';
    const registry = registryClient(bed.emulator, HUB_A);
    await registry.create({ deviceId: id });
    // The masking list, read now; then the wall clock set back an hour (only Date: sockets and
    // timers run on), and an enrollment created with a key that then shows up in a device's field.
    await request('/api/hubs');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() - 3_600_000);
      const key = generateSymmetricKey();
      await dpsServiceClient(bed.emulator).createOrUpdateIndividualEnrollment({
        registrationId: 'web-clock-back-enrollment',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      } as never);
      await registry.update({ deviceId: id, status: 'enabled', statusReason: key } as never);
      // Past the list's one-second life, on the real clock.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const text = (await request(`/api/hubs/${HUB_A}/devices/${id}`)).text;
      expect(text).toContain('"statusReason":"****"');
      expect(text).not.toContain(key);
    } finally {
      vi.useRealTimers();
    }
  });

  it('streams new attempts as server-sent events, and resumes after a given seq', async () => {
    const live1 = openStream('/api/stream');
    // The stream starts after the newest attempt: wait for its first message before registering.
    await live1.ready;
    await register(bed.emulator, 'web-live-1', groupDeviceKey('hashed', 'web-live-1'));
    const text = await live1.waitFor((t) => t.includes('"web-live-1"'));
    live1.close();
    expect(text.startsWith('retry: 2000\n')).toBe(true);
    const live = streamedAttempts(text).find((a) => a.registrationId === 'web-live-1');
    expect(live).toMatchObject({ status: 'assigned', enrollment: { id: 'hashed-group' } });

    const before = (live?.seq ?? 1) - 1;
    const live2 = openStream(`/api/stream?after=${before}`);
    const resumed = await live2.waitFor((t) => t.includes('"web-live-1"'));
    live2.close();
    expect(streamedAttempts(resumed)[0]?.seq).toBe(live?.seq);
  });

  it('tells each run apart by its epoch: resumes within it, starts at the newest for another run', async () => {
    const { epoch } = await json<WebViewOverview & { epoch: string }>('/api/overview');
    expect(epoch).toMatch(/^[0-9a-f-]{36}$/);
    const first = openStream('/api/stream');
    const ready = await first.ready;
    first.close();
    expect(streamed<{ epoch: string }>(ready, 'ready')).toEqual([{ epoch }]);
    const id = lastEventId(ready);
    expect(id).toMatch(new RegExp(`^${epoch}:\\d+:\\d+$`));

    await register(bed.emulator, 'web-epoch-1', groupDeviceKey('hashed', 'web-epoch-1'));
    // The id of this run resumes where it left off: the attempt made meanwhile comes.
    const resumed = openStream('/api/stream', { 'last-event-id': id });
    expect(streamedAttempts(await resumed.waitFor((t) => t.includes('"web-epoch-1"')))).toHaveLength(1);
    resumed.close();
    // Another run's id (the emulator restarted, its state perhaps reset) means nothing here: the
    // stream starts at the newest and its ready event names this run, for the page to load afresh.
    for (const [path, headers] of [
      ['/api/stream', { 'last-event-id': 'another-run:0:0' }],
      ['/api/stream?after=0&devicesAfter=0&epoch=another-run', {}],
    ] as const) {
      const other = openStream(path, headers);
      const text = await other.ready;
      await register(bed.emulator, `web-epoch-${path.length}`, groupDeviceKey('hashed', `web-epoch-${path.length}`));
      const next = await other.waitFor((t) => t.includes(`"web-epoch-${path.length}"`));
      other.close();
      expect(streamed<{ epoch: string }>(text, 'ready')).toEqual([{ epoch }]);
      expect(streamedAttempts(next).map((a) => a.registrationId)).toEqual([`web-epoch-${path.length}`]);
    }
    const bad = await request('/api/stream', { headers: { 'last-event-id': 'nonsense' } });
    expect([bad.status, JSON.parse(bad.text).error]).toEqual([
      400,
      'Last-Event-ID must be an event id of this stream, not "nonsense".',
    ]);
  });

  it('shows the hubs: devices, twin with versions, last telemetry, live on the stream, never a key', async () => {
    const id = 'web-hub-toaster';
    const key = groupDeviceKey('custom', id);
    const live = openStream('/api/stream');
    await live.ready;
    expect((await register(bed.emulator, id, key)).assignedHub).toBe(HUB_A);
    const hasDevice = (t: string) =>
      streamed<{ devices: HubDeviceSummary[] }>(t, 'hub-devices').some((e) => e.devices.some((d) => d.deviceId === id));
    const provisioned = await live.waitFor(hasDevice);
    const [change] = streamed<{ devices: HubDeviceSummary[]; counts: Record<string, number> }>(
      provisioned,
      'hub-devices',
    ).filter((e) => e.devices.some((d) => d.deviceId === id));
    expect(change?.devices.find((d) => d.deviceId === id)).toMatchObject({
      hub: HUB_A,
      authenticationType: 'sas',
      status: 'enabled',
      connectionState: 'Disconnected',
      registrationId: id,
      desiredVersion: 1,
      reportedVersion: 1,
    });
    expect(change?.counts[HUB_A]).toBeGreaterThanOrEqual(1);

    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await client.open();
    try {
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ firmware: '2.0.0' }, (err?: Error) => (err ? reject(err) : resolve())),
      );
      for (let seq = 1; seq <= 12; seq++) {
        const seen = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
        await client.sendEvent(
          Object.assign(new Message(JSON.stringify({ seq })), { contentType: 'application/json' }),
        );
        await seen;
      }
      await client.sendEvent(new Message(Buffer.from([0xff, 0x00, 0xfe])));
      const connected = await live.waitFor((t) =>
        streamed<{ devices: HubDeviceSummary[] }>(t, 'hub-devices').some((e) =>
          e.devices.some((d) => d.deviceId === id && d.connectionState === 'Connected' && d.reportedVersion === 2),
        ),
      );
      expect(connected).not.toContain(key);

      const { hubs } = await json<{
        seq: number;
        hubs: { hostName: string; deviceCount: number; devices: HubDeviceSummary[] }[];
      }>('/api/hubs');
      expect(hubs.map((h) => h.hostName)).toEqual(bed.emulator.linkedHubs.map((h) => h.hostName));
      const hubA = hubs.find((h) => h.hostName === HUB_A);
      expect(hubA?.deviceCount).toBe(bed.emulator.hubDevices(HUB_A).length);
      expect(hubA?.devices.map((d) => d.deviceId)).toContain(id);

      await poll(async () => (await json<HubDeviceDetail>(`/api/hubs/${HUB_A}/devices/${id}`)).telemetry.length).toBe(
        10,
      );
      const detail = await json<HubDeviceDetail>(`/api/hubs/${HUB_A.toUpperCase()}/devices/${encodeURIComponent(id)}`);
      expect(detail).toMatchObject({ deviceId: id, connectionState: 'Connected', reportedVersion: 2 });
      expect(detail.lastActivityUtc).toMatch(/^\d{4}-/);
      expect(detail.twin).toEqual({
        tags: WEBHOOK_TWIN.tags,
        desired: { ...WEBHOOK_TWIN.properties.desired, $version: 1 },
        reported: { firmware: '2.0.0', $version: 2 },
      });
      // The newest 10 the store keeps of the device, oldest first; a body that is not UTF-8 in base64.
      expect(detail.telemetry.slice(0, 9).map((m) => JSON.parse(m.body).seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(detail.telemetry[0]).toMatchObject({
        transport: 'mqtt',
        encoding: 'utf-8',
        bytes: 9,
        properties: { '$.ct': 'application/json' },
      });
      expect(detail.telemetry[9]).toMatchObject({ body: '/wD+', encoding: 'base64', bytes: 3 });
    } finally {
      await client.close();
      live.close();
    }
    // Views are built without keys; should one get into a field (here a registry update puts the
    // device's own key into its statusReason), the answer masks it.
    await registryClient(bed.emulator, HUB_A).update({ deviceId: id, status: 'enabled', statusReason: key } as never);
    const hubsText = (await request('/api/hubs')).text;
    expect(hubsText).toContain('"statusReason":"****"');
    expect((await request(`/api/hubs/${HUB_A}/devices/${id}`)).text).toContain('"statusReason":"****"');
    expect((await request(`/api/hubs/${HUB_A}/devices/nobody`)).status).toBe(404);
    expect((await request(`/api/hubs/not-a-hub.net/devices/${id}`)).status).toBe(404);
    expect((await request(`/api/hubs/${HUB_A}/devices/%E0%A4%A`)).status).toBe(400);
    for (const text of answered) expect(text).not.toContain(key);
  });

  it("lists a device's module identities: connection, module twin and their messages, live, never a key", async () => {
    const deviceId = 'web-hub-gateway';
    const registry = registryClient(bed.emulator, HUB_A);
    await registry.create({ deviceId });
    const added = (await registry.addModule({ deviceId, moduleId: 'sensor', managedBy: 'line-3' } as never))
      .responseBody;
    await registry.addModule({ deviceId, moduleId: 'idle' });
    const key = added.authentication?.symmetricKey?.primaryKey ?? '';
    moduleKeys.push(key, added.authentication?.symmetricKey?.secondaryKey ?? '');
    const live = openStream('/api/stream');
    await live.ready;
    const module = await moduleClient(bed.emulator, { hub: HUB_A, deviceId, moduleId: 'sensor', key });
    await module.open();
    try {
      const twin = await module.getTwin();
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ sampling: 5 }, (err?: Error) => (err ? reject(err) : resolve())),
      );
      const seen = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.moduleId === 'sensor');
      await module.sendEvent(new Message('{"t":21.5}'));
      await seen;
      // A module's connection and its reported properties are its device's changes on the stream.
      await live.waitFor((t) =>
        streamed<{ devices: HubDeviceSummary[] }>(t, 'hub-devices').some((e) =>
          e.devices.some((d) => d.deviceId === deviceId && d.modulesConnected === 1),
        ),
      );
      const { hubs } = await json<{ hubs: { hostName: string; devices: HubDeviceSummary[] }[] }>('/api/hubs');
      const listed = hubs.find((h) => h.hostName === HUB_A)?.devices.find((d) => d.deviceId === deviceId);
      expect(listed).toMatchObject({ connectionState: 'Disconnected', moduleCount: 2, modulesConnected: 1 });
      const detail = await json<HubDeviceDetail>(`/api/hubs/${HUB_A}/devices/${deviceId}`);
      expect(detail.modules.map((m) => m.moduleId)).toEqual(['idle', 'sensor']);
      expect(detail.modules[0]).toMatchObject({ moduleId: 'idle', connectionState: 'Disconnected', twinVersion: 1 });
      expect(detail.modules[1]).toMatchObject({
        moduleId: 'sensor',
        managedBy: 'line-3',
        authenticationType: 'sas',
        connectionState: 'Connected',
        reportedVersion: 2,
      });
      expect(detail.modules[1]?.twin).toEqual({
        tags: {},
        desired: { $version: 1 },
        reported: { sampling: 5, $version: 2 },
      });
      expect(detail.modules[1]?.lastActivityUtc).toMatch(/^\d{4}-/);
      expect(detail.telemetry).toEqual([expect.objectContaining({ body: '{"t":21.5}', moduleId: 'sensor' })]);
    } finally {
      await module.close();
    }
    await live.waitFor((t) =>
      streamed<{ devices: HubDeviceSummary[] }>(t, 'hub-devices').some((e) =>
        e.devices.some((d) => d.deviceId === deviceId && d.modulesConnected === 0),
      ),
    );
    // Removing a module is a change of its device too.
    await registry.removeModule(deviceId, 'idle');
    await live.waitFor((t) =>
      streamed<{ devices: HubDeviceSummary[] }>(t, 'hub-devices').some((e) =>
        e.devices.some((d) => d.deviceId === deviceId && d.moduleCount === 1),
      ),
    );
    live.close();
    for (const text of answered) expect(text).not.toContain(key);
  });

  it('shows refused devices with their 401, never their token', async () => {
    const wrongKey = groupDeviceKey('hashed', 'someone-else');
    await rejectionOf(register(bed.emulator, 'web-refused', wrongKey));
    const attempts = await json<AttemptSummary[]>('/api/attempts?limit=50');
    expect(attempts.findLast((a) => a.registrationId === 'web-refused')).toMatchObject({
      status: 'unauthorized',
      transport: 'mqtt',
    });
  });

  it('is read-only, answers only loopback host names, and names what is wrong with a request', async () => {
    expect((await request('/api/attempts', { method: 'POST' })).status).toBe(405);
    expect((await request('/api/attempts', { method: 'DELETE' })).headers.allow).toBe('GET, HEAD');
    const rebound = await request('/api/attempts', { host: 'attacker.example:8090' });
    expect(rebound.status).toBe(403);
    expect(rebound.text).toContain('localhost');
    expect((await request('/api/attempts', { host: 'localhost:1' })).status).toBe(200);
    expect(JSON.parse((await request('/api/attempts?limit=0')).text).error).toContain('limit');
    expect((await request('/api/attempts?after=x')).status).toBe(400);
    expect((await request('/api/attempts/abc')).status).toBe(400);
    expect((await request('/api/attempts/999999999')).status).toBe(404);
    expect((await request('/api/nothing')).status).toBe(404);
    expect((await request('/api/stream?after=-1')).status).toBe(400);
    expect(formatBanner(bed.emulator)).toContain(`  Web    ${bed.emulator.webViewUrl}   (read-only`);
    const page = await request('/');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
  });

  it('serves the built page from the package: index.html, app.js, app.css, revalidated by ETag', async () => {
    const page = await request('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('<script type="module" src="/app.js"></script>');
    const script = await request('/app.js');
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text.length).toBeGreaterThan(10_000);
    expect((await request('/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const etag = script.headers.etag ?? '';
    const base = new URL(bed.emulator.webViewUrl ?? '');
    const revalidated = await new Promise<number>((resolve, reject) =>
      http
        .get({ host: base.hostname, port: base.port, path: '/app.js', headers: { 'if-none-match': etag } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject),
    );
    expect(revalidated).toBe(304);
    expect((await request('/../package.json')).status).toBe(404);
  });

  it('never sends a key, the function key or the service key', async () => {
    await json('/api/overview');
    const secrets = [
      ...Object.values(KEYS).flatMap((k) => [k.primaryKey, k.secondaryKey]),
      'test-function-key',
      WELL_KNOWN_SERVICE_KEY,
      WELL_KNOWN_HUB_KEY,
      groupDeviceKey('custom', 'web-hub-toaster'),
      groupDeviceKey('custom', 'web-hub-toaster', 'secondaryKey'),
      ...moduleKeys,
    ];
    expect(answered.length).toBeGreaterThan(10);
    for (const text of answered) for (const secret of secrets) expect(text).not.toContain(secret);
  });
});
