/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deriveDeviceKey } from '@dpskit/contracts';
import { WELL_KNOWN_SERVICE_KEY } from '@dpskit/emulator';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from './harness/browser.js';
import { runDeviceSim } from './harness/device-sim.js';
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

beforeAll(async () => {
  stack = await startTutorialStack();
  session = await openBrowser();
  page = session.page;
});

afterAll(async () => {
  await session?.close();
  await stack?.close();
});

function register(registrationId: string) {
  return runDeviceSim(
    [
      'register',
      ...stack.connectionArgs('mqtt'),
      '--registration-id',
      registrationId,
      '--payload',
      JSON.stringify(TUTORIAL.payload),
    ],
    { DPS_GROUP_KEY: TUTORIAL.groupKey },
  );
}

/** The page updates live; on a loaded machine that can take seconds, never a fixed time. */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 90_000, interval: 100 });

const row = (registrationId: string) =>
  page.locator(`[data-testid="attempt-row"][data-registration-id="${registrationId}"]`);
const rows = () => page.locator('[data-testid="attempt-row"]');

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

  it('never lets a key, a function key or a token reach the DOM or the network', async () => {
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
      'SharedAccessSignature',
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
