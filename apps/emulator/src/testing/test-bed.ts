import type { RegistrationEvent } from '../core/events.js';
import type { Emulator, EmulatorOptions } from '../emulator.js';
import {
  closedPortUrl,
  scriptedWebhook,
  startTestEmulator,
  tempStateDir,
  testConfig,
  testEmulatorOptions,
} from './fixtures.js';
import { startWebhook, type TestWebhook } from './webhook-server.js';

/** A running emulator on `testConfig`'s enrollments, shared by the tests of one file. */
export interface TestBed {
  emulator: Emulator;
  events: RegistrationEvent[];
  /** Stops what the bed started and removes its state folder. */
  close(): Promise<void>;
}

export interface TestBedWithWebhook extends TestBed {
  webhook: TestWebhook;
}

/**
 * The emulator on `testConfig` in a fresh state folder, its custom groups' webhooks at the given URLs.
 * If it does not start, the folder is removed before the error is rethrown.
 */
export async function startTestBed(
  webhookUrl: string,
  unreachableWebhookUrl: string,
  overrides: Partial<EmulatorOptions> = {},
): Promise<TestBed> {
  const state = tempStateDir();
  try {
    const { emulator, events } = await startTestEmulator(
      testEmulatorOptions(testConfig(webhookUrl, unreachableWebhookUrl), state.path, overrides),
    );
    return {
      emulator,
      events,
      async close() {
        await emulator.stop();
        state.remove();
      },
    };
  } catch (err) {
    state.remove();
    throw err;
  }
}

/**
 * The same with `scriptedWebhook()` answering the custom group and the unreachable group's webhook
 * on a closed port. If the emulator does not start, the webhook is closed before the error is rethrown.
 */
export async function startTestBedWithWebhook(overrides: Partial<EmulatorOptions> = {}): Promise<TestBedWithWebhook> {
  const webhook = await startWebhook(scriptedWebhook());
  try {
    const bed = await startTestBed(webhook.url, await closedPortUrl(), overrides);
    return {
      ...bed,
      webhook,
      async close() {
        await bed.close();
        await webhook.close();
      },
    };
  } catch (err) {
    await webhook.close();
    throw err;
  }
}
