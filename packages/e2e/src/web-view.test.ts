/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deriveDeviceKey } from '@dpskit/contracts';
import { WELL_KNOWN_HUB_KEY, WELL_KNOWN_SERVICE_KEY } from '@dpskit/emulator';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from './harness/browser.js';
import { runDeviceSim } from './harness/device-sim.js';
import { emulatorRegistry } from './harness/registry.js';
import { startTutorialStack, type TutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

// The emulator's web view in a real headless browser (Debian's chromium, driven by playwright-core)
// while the tutorial's devices and a fleet register with device-sim on the official SDK.

/** Set to a folder (docs/) to keep screenshots of the page during the fleet run. */
const SCREENSHOTS = process.env.DPSKIT_SCREENSHOTS_DIR;
const FLEET = 200;

let stack: TutorialStack;
let session: BrowserSession;
let page: Page;
/** The keys of the module identity a test adds: looked for in the DOM and traffic at the end. */
const moduleKeys: string[] = [];

beforeAll(async () => {
  stack = await startTutorialStack();
  session = await openBrowser();
  page = session.page;
});

afterAll(async () => {
  await session?.close();
  await stack?.close();
});

function register(registrationId: string, ...extra: string[]) {
  return runDeviceSim(
    [
      'register',
      ...stack.connectionArgs('mqtt'),
      '--registration-id',
      registrationId,
      '--payload',
      JSON.stringify(TUTORIAL.payload),
      ...extra,
    ],
    { DPS_GROUP_KEY: TUTORIAL.groupKey },
  );
}

/** The page updates live; on a loaded machine that can take seconds, never a fixed time. */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 90_000, interval: 100 });

const row = (registrationId: string) =>
  page.locator(`[data-testid="attempt-row"][data-registration-id="${registrationId}"]`);
const rows = () => page.locator('[data-testid="attempt-row"]');
const hubDevice = (deviceId: string) => page.locator(`[data-testid="hub-device-row"][data-device-id="${deviceId}"]`);

describe('the web view in a browser', () => {
  it('shows the tutorial devices appear live with their outcomes', async () => {
    await page.goto(stack.emulator.webViewUrl ?? '');
    await poll(() => page.getByTestId('stream-state').textContent()).toContain('live');
    expect(await rows().count()).toBe(0);

    expect((await register(TUTORIAL.toaster)).code).toBe(0);
    await row(TUTORIAL.toaster).waitFor();
    expect((await register(TUTORIAL.heatpump)).code).toBe(1);
    await row(TUTORIAL.heatpump).waitFor();

    expect(await row(TUTORIAL.toaster).getAttribute('data-status')).toBe('assigned');
    // The hub's short name in the cell, its host name on hover.
    expect(await row(TUTORIAL.toaster).locator('td.outcome').textContent()).toBe('assigned contoso-toasters-hub-1098');
    expect(await row(TUTORIAL.toaster).locator('td.outcome [title]').getAttribute('title')).toBe(TUTORIAL.toasterHub);
    expect(await row(TUTORIAL.heatpump).getAttribute('data-status')).toBe('failed');
    expect(await row(TUTORIAL.heatpump).textContent()).toContain(
      '400207 Custom allocation failed with status code: 400',
    );
    // Newest first, one row per attempt, nothing reloaded.
    expect(await rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-registration-id')))).toEqual([
      TUTORIAL.heatpump,
      TUTORIAL.toaster,
    ]);
  });

  it("opens the heat pump's row: the webhook request body DPS sent and the allocator's 400 answer", async () => {
    await row(TUTORIAL.heatpump).click();
    const request = page.getByTestId('webhook-request');
    await request.waitFor();
    const body = JSON.parse((await request.locator('pre').textContent()) ?? '');
    expect(body).toMatchObject({
      enrollmentGroup: { enrollmentGroupId: TUTORIAL.enrollmentGroupId, attestation: { type: 'symmetricKey' } },
      deviceRuntimeContext: { registrationId: TUTORIAL.heatpump, payload: TUTORIAL.payload },
      linkedHubs: [TUTORIAL.toasterHub],
    });
    expect(body.enrollmentGroup.customAllocationDefinition.webhookUrl).toMatch(/\?\*\*\*\*$/);
    const response = page.getByTestId('webhook-response');
    expect(await response.locator('h3').textContent()).toBe('Webhook response: 400');
    expect(await response.locator('pre').textContent()).toContain('Unrecognized device registration.');
    expect(JSON.parse((await page.getByTestId('device-payload').locator('pre').textContent()) ?? '')).toEqual(
      TUTORIAL.payload,
    );
    expect(JSON.parse((await page.getByTestId('registration-state').locator('pre').textContent()) ?? '')).toMatchObject(
      { registrationId: TUTORIAL.heatpump, status: 'failed', errorCode: 400207 },
    );

    await row(TUTORIAL.toaster).click();
    await poll(() => page.getByTestId('webhook-response').locator('h3').textContent()).toBe('Webhook response: 200');
    expect(await page.getByTestId('webhook-response').locator('pre').textContent()).toContain(TUTORIAL.toasterHub);
  });

  it('filters by outcome, enrollment and registration id', async () => {
    const shown = () => rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-registration-id')));
    await page.getByTestId('filter-outcome').selectOption('failed');
    await poll(shown).toEqual([TUTORIAL.heatpump]);
    await page.getByTestId('filter-outcome').selectOption('assigned');
    await poll(shown).toEqual([TUTORIAL.toaster]);
    await page.getByTestId('filter-outcome').selectOption('unauthorized');
    await poll(shown).toEqual([]);
    await page.getByTestId('filter-outcome').selectOption('');
    await page.getByTestId('filter-id').fill('HEATPUMP');
    await poll(shown).toEqual([TUTORIAL.heatpump]);
    await page.getByTestId('filter-id').fill('');
    await page.getByTestId('filter-enrollment').selectOption(`group:${TUTORIAL.enrollmentGroupId}`);
    await poll(shown).toEqual([TUTORIAL.heatpump, TUTORIAL.toaster]);
    await page.getByTestId('filter-enrollment').selectOption('');
    await poll(shown).toHaveLength(2);
  });

  it('shows the enrollment group with its masked webhook and registration count', async () => {
    await page.getByTestId('tab-enrollments').click();
    const group = page.locator(`[data-testid="enrollment-row"][data-enrollment-id="${TUTORIAL.enrollmentGroupId}"]`);
    await group.waitFor();
    expect(await group.getByTestId('webhook-url').textContent()).toMatch(
      /\/api\/allocate\?\*\*\*\* \(api 2021-10-01\)$/,
    );
    await poll(() => group.locator('td').last().textContent()).toBe('2');
    expect(await group.textContent()).toContain('custom');
  });

  it(`draws a ${FLEET}-device fleet in the charts while it registers`, async () => {
    await page.getByTestId('tab-fleet').click();
    const fleet = runDeviceSim(
      [
        'fleet',
        ...stack.connectionArgs('mqtt'),
        '--count',
        String(FLEET),
        '--concurrency',
        '50',
        '--registration-id-template',
        'contoso-toaster-{n:3},contoso-heatpump-{n:3}',
        '--json',
      ],
      { DPS_GROUP_KEY: TUTORIAL.groupKey },
    );
    if (SCREENSHOTS) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      // Mid-run: wait until part of the fleet is in, then keep what the page shows.
      await poll(() => total()).toBeGreaterThan(2 + FLEET / 3);
      await page.screenshot({ path: join(SCREENSHOTS, 'web-view-fleet.png'), fullPage: true });
    }
    const run = await fleet;
    expect(run.code, run.stderr).toBe(0);
    const expected = FLEET + 2;
    await poll(() => total()).toBe(expected);
    expect(await dataTotal('chart-rate')).toBe(expected);
    expect(await dataTotal('chart-outcomes')).toBe(expected);
    // The tutorial assigns toasters only: half the fleet and contoso-toaster-007.
    expect(await dataTotal('chart-hubs')).toBe(FLEET / 2 + 1);
    expect(await page.getByTestId('chart-hubs').textContent()).toContain(`${TUTORIAL.toasterHub} ${FLEET / 2 + 1}`);
    expect(await page.getByTestId('chart-outcomes').textContent()).toContain(`failed 400207 ${FLEET / 2 + 1}`);
    expect(Number(await page.getByTestId('kpi-p50').textContent())).toBeGreaterThanOrEqual(0);
    // Each canvas has drawn something.
    for (const id of ['chart-rate', 'chart-latency', 'chart-outcomes', 'chart-hubs']) {
      expect(await painted(id), id).toBe(true);
    }
    if (SCREENSHOTS) {
      await page.screenshot({ path: join(SCREENSHOTS, 'web-view-fleet-done.png'), fullPage: true });
      await page.getByTestId('tab-registrations').click();
      await row('contoso-heatpump-001').click();
      await page.getByTestId('webhook-response').waitFor();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SCREENSHOTS, 'web-view-registrations.png') });
    }
  });

  it('shows the toaster on its hub, live: its initial twin, the property it reported and its telemetry', async () => {
    await page.getByTestId('tab-hubs').click();
    const device = hubDevice(TUTORIAL.toaster);
    // Provisioned by the first test: on its hub, never connected yet.
    await device.waitFor();
    expect(await device.getAttribute('data-connection')).toBe('Disconnected');
    await device.click();
    const detail = page.getByTestId('hub-device-detail');
    const json = async (testId: string) =>
      JSON.parse((await detail.getByTestId(testId).locator('pre').textContent()) ?? '');
    await poll(() => json('twin-tags')).toEqual(TUTORIAL.initialTwin.tags);
    expect(await detail.getByTestId('telemetry').textContent()).toContain('No messages yet.');

    // The tutorial's toaster provisions again, connects to its hub, reports and sends 3 messages (device-sim on the official SDKs).
    const run = await register(TUTORIAL.toaster, '--telemetry', '3', '--json');
    expect(run.code, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout);
    expect(outcome.hubSession).toMatchObject({ status: 'connected', telemetrySent: 3 });

    // The open detail follows without a reload.
    const messages = detail.getByTestId('telemetry-message');
    await poll(() => messages.count()).toBe(3);
    const bodies = await messages.locator('pre').allTextContents();
    // Newest first.
    expect(bodies.map((body) => JSON.parse(body).seq)).toEqual([3, 2, 1]);
    expect(await messages.first().textContent()).toContain('over MQTT');
    expect(await json('twin-tags')).toEqual(TUTORIAL.initialTwin.tags);
    expect(await json('twin-desired')).toMatchObject(TUTORIAL.initialTwin.properties.desired);
    const reported = await json('twin-reported');
    expect(reported).toMatchObject(outcome.hubSession.reported);
    expect(reported.deviceSim.connectedAtUtc).toMatch(/^\d{4}-/);
    expect(await detail.getByTestId('twin-reported').locator('h3').textContent()).toBe(
      `Reported properties ($version ${reported.$version})`,
    );
    // The row is live too: device-sim has left again, the activity and versions moved.
    expect(await device.locator('td').nth(1).textContent()).toBe('SAS (symmetric key)');
    await poll(async () => Number(await device.locator('td').nth(7).textContent())).toBe(reported.$version);
    expect(await page.getByTestId('hub').getAttribute('data-hub')).toBe(TUTORIAL.toasterHub);
    // The tutorial's toaster and the fleet's toasters, as the hub has them.
    const devices = stack.emulator.hubDevices(TUTORIAL.toasterHub).length;
    expect(devices).toBeGreaterThanOrEqual(FLEET / 2);
    expect(await page.getByTestId('hub-counts').textContent()).toMatch(
      new RegExp(`^${devices} devices, [01] connected`),
    );
    if (SCREENSHOTS) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SCREENSHOTS, 'web-view-hubs.png') });
    }
  });

  it("lists the toaster's module identity, live: its connection and module twin", async () => {
    await page.getByTestId('tab-hubs').click();
    const device = hubDevice(TUTORIAL.toaster);
    await device.waitFor();
    expect(await device.getByTestId('hub-device-modules').textContent()).toBe('—');
    await device.click();
    const detail = page.getByTestId('hub-device-detail');
    await poll(() => detail.getByTestId('hub-modules').locator('h3').textContent()).toBe('Modules (0)');
    // The service adds a module and sets its twin (azure-iothub Registry, as a back end does).
    const registry = emulatorRegistry(stack.emulator, TUTORIAL.toasterHub);
    const added = (
      await registry.addModule({ deviceId: TUTORIAL.toaster, moduleId: 'thermostat', managedBy: 'line-3' } as never)
    ).responseBody;
    moduleKeys.push(added.authentication?.symmetricKey?.primaryKey, added.authentication?.symmetricKey?.secondaryKey);
    await registry.updateModuleTwin(
      TUTORIAL.toaster,
      'thermostat',
      { tags: { room: 'kitchen' }, properties: { desired: { target: 21 } } },
      '*',
    );
    // The row and the open detail follow without a reload.
    await poll(() => device.getByTestId('hub-device-modules').textContent()).toBe('1 (0 connected)');
    const module = detail.locator('[data-testid="hub-module"][data-module-id="thermostat"]');
    await poll(() => module.getByTestId('module-desired').textContent()).toContain('"target": 21');
    expect(await module.getAttribute('data-connection')).toBe('Disconnected');
    expect(await module.locator('summary').textContent()).toContain('managed by line-3');
    await module.locator('summary').click();
    expect(JSON.parse((await module.getByTestId('module-tags').textContent()) ?? '')).toEqual({ room: 'kitchen' });
    expect(JSON.parse((await module.getByTestId('module-desired').textContent()) ?? '')).toEqual({
      target: 21,
      $version: 2,
    });
    expect(await detail.getByTestId('hub-modules').locator('h3').textContent()).toBe('Modules (1)');
  });

  it('never lets a key, a function key or a token reach the DOM or the network', async () => {
    await page.getByTestId('tab-hubs').click();
    await hubDevice(TUTORIAL.toaster).click();
    await page.getByTestId('telemetry-message').first().waitFor();
    await page.getByTestId('tab-enrollments').click();
    await page.getByTestId('tab-registrations').click();
    // The fleet registered a contoso-toaster-007 too: the newest row.
    await row(TUTORIAL.toaster).first().click();
    await page.getByTestId('webhook-request').waitFor();
    await session.trafficSettled();
    const functionKey = new URL(stack.allocator.webhookUrl).searchParams.get('code') ?? '';
    expect(functionKey.length).toBeGreaterThan(8);
    const secrets = [
      TUTORIAL.groupKey,
      deriveDeviceKey(TUTORIAL.groupKey, TUTORIAL.toaster),
      deriveDeviceKey(TUTORIAL.groupKey, TUTORIAL.heatpump),
      deriveDeviceKey(TUTORIAL.groupKey, 'contoso-toaster-001'),
      functionKey,
      encodeURIComponent(functionKey),
      WELL_KNOWN_SERVICE_KEY,
      WELL_KNOWN_HUB_KEY,
      ...moduleKeys,
      'SharedAccessSignature',
      'primaryKey',
      'secondaryKey',
      'sig=',
      'code=',
    ];
    const dom = await page.evaluate(() => document.documentElement.outerHTML);
    expect(dom).toContain(TUTORIAL.heatpump);
    expect(session.traffic.length).toBeGreaterThan(5);
    const wire = session.traffic.join('\n');
    expect(wire).toContain('contoso-toaster-100');
    for (const secret of secrets) {
      expect(dom, `DOM contains ${secret}`).not.toContain(secret);
      expect(wire, `traffic contains ${secret}`).not.toContain(secret);
    }
  });
});

async function total(): Promise<number> {
  return Number(((await page.getByTestId('kpi-total').textContent()) ?? '').replaceAll(',', ''));
}

async function dataTotal(testId: string): Promise<number> {
  return Number(await page.getByTestId(testId).getAttribute('data-total'));
}

/** True when the chart's canvas has a pixel that is not transparent. */
function painted(testId: string): Promise<boolean> {
  return page
    .getByTestId(testId)
    .locator('canvas')
    .evaluate((canvas: HTMLCanvasElement) => {
      const context = canvas.getContext('2d');
      if (!context || canvas.width === 0) return false;
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) return true;
      return false;
    });
}
