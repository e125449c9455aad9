/// <reference lib="dom" />
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmulator, type Emulator } from '@dpskit/emulator';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from './harness/browser.js';
import { runDeviceSim } from './harness/device-sim.js';
import { stablePorts } from './harness/stable-ports.js';
import { TUTORIAL } from './harness/tutorial.js';

// A page left open while the emulator restarts on the same web port, its state folder reset or
// kept: the page reconnects by itself and shows what the new run has, nothing of the old one's
// that is gone and nothing twice (Debian's chromium, driven by playwright-core; devices on the
// official SDK through device-sim). The emulator starts without config: the tutorial setup, hashed.

let stateDir: string;
let session: BrowserSession;
let page: Page;
let emulator: Emulator | undefined;
let webPort: number;

/** Starts the emulator on the state folder and the page's port. */
async function start(): Promise<Emulator> {
  const started = createEmulator({
    stateDir,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    retryAfterSeconds: 0,
    webView: { port: webPort },
    log: () => {},
  });
  await started.start();
  emulator = started;
  return started;
}

async function stop(): Promise<void> {
  await emulator?.stop();
  emulator = undefined;
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'dpskit-e2e-restart-'));
  // Each restart listens on this port again: one no outgoing connection can take while nothing
  // listens there (see stablePorts), which a port-0 port could be.
  [webPort] = (await stablePorts(1)) as [number];
  session = await openBrowser();
  page = session.page;
});

afterAll(async () => {
  await session?.close();
  await stop();
  await rm(stateDir, { recursive: true, force: true });
});

async function register(registrationId: string): Promise<void> {
  if (!emulator) throw new Error('the emulator is not running');
  const run = await runDeviceSim(
    [
      'register',
      ...['--transport', 'mqtt', '--provisioning-host', emulator.endpoints.mqtt.provisioningHost],
      ...['--ca', emulator.caCertPath, '--id-scope', emulator.idScope, '--registration-id', registrationId],
    ],
    { DPS_GROUP_KEY: TUTORIAL.groupKey },
  );
  expect(run.code, run.stderr).toBe(0);
}

/** The page updates live; on a loaded machine that can take seconds, never a fixed time. */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 90_000, interval: 100 });
const shownIds = () =>
  page
    .locator('[data-testid="attempt-row"]')
    .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-registration-id')));
const streamState = () => page.getByTestId('stream-state').textContent();
const mqttShown = () => page.getByTestId('endpoint-mqtt').textContent();

describe('an open page across emulator restarts', () => {
  it('loads afresh after a restart on a reset state folder: the old rows go, the new run streams live', async () => {
    await start();
    await page.goto(emulator?.webViewUrl ?? '');
    await poll(streamState).toContain('live');
    await register(TUTORIAL.toaster);
    await poll(shownIds).toEqual([TUTORIAL.toaster]);
    await page.getByTestId('tab-hubs').click();
    await page.locator(`[data-testid="hub-device-row"][data-device-id="${TUTORIAL.toaster}"]`).waitFor();
    await page.getByTestId('tab-registrations').click();

    await stop();
    await poll(streamState).not.toContain('live');
    // The reset: the whole state folder goes (registrations, the attempt log, the hubs' devices).
    await rm(stateDir, { recursive: true, force: true });
    const second = await start();

    // Without a page reload: the new run's (empty) log, its endpoints, live again.
    await poll(mqttShown).toBe(`MQTT 127.0.0.1:${second.endpoints.mqtt.port}`);
    await poll(streamState).toContain('live');
    await poll(shownIds).toEqual([]);
    expect(await page.getByTestId('tab-hubs').textContent()).toBe('Hubs (0)');
    // The new run's first attempt has the seq the old run's toaster had: it must still come.
    await register(TUTORIAL.heatpump);
    await poll(shownIds).toEqual([TUTORIAL.heatpump]);
    await poll(() => page.getByTestId('tab-hubs').textContent()).toBe('Hubs (1)');
  });

  it('after a restart on the same state folder shows each attempt once and goes on live', async () => {
    await stop();
    await poll(streamState).not.toContain('live');
    const third = await start();
    await poll(mqttShown).toBe(`MQTT 127.0.0.1:${third.endpoints.mqtt.port}`);
    await poll(streamState).toContain('live');
    await register(TUTORIAL.toaster);
    await poll(shownIds).toEqual([TUTORIAL.toaster, TUTORIAL.heatpump]);
  });
});
