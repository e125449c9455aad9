import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { about, loggedAll, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { type HubModuleClient, moduleClient } from '../testing/hub-module-sdk.js';
import { hubAgent, keptAliveRegistry, serviceClient } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): a ModuleClient connected to one worker gets the
// direct method calls and desired-property changes that the other worker takes, through the store's
// push table, as a device does (workers.hub-methods.test.ts). The service and registry clients open
// a new connection for every call (no keep-alive), which the primary hands to the workers in turn;
// which worker took a call or a change is read from its `hub.method` / `hub.twin-updated` line.

describe('dps-emulator start --workers: modules across workers', () => {
  it('method calls and desired changes taken by either worker reach the module on the other', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2']);
    let module: HubModuleClient | undefined;
    try {
      const setup = keptAliveRegistry(child.view, HUB_A);
      await setup.create({ deviceId: 'edge-w' });
      const added = (await setup.addModule({ deviceId: 'edge-w', moduleId: 'm' })).responseBody;
      module = await moduleClient(child.view, {
        hub: HUB_A,
        deviceId: 'edge-w',
        moduleId: 'm',
        key: added.authentication?.symmetricKey?.primaryKey ?? '',
      });
      await module.open();
      module.onMethod('whoami', (request, response) => {
        void response?.send(200, { asked: request?.payload });
      });
      const twin = await module.getTwin();
      // Each round the module's twin has seen, and who waits for which round.
      const desired = new Set<number>();
      const waiting = new Map<number, () => void>();
      twin.on('properties.desired', (patch: { round?: number }) => {
        if (typeof patch.round !== 'number') return;
        desired.add(patch.round);
        waiting.get(patch.round)?.();
      });
      const desiredReached = (round: number) =>
        desired.has(round) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(round, resolve));
      const { worker } = (await loggedAll(child, about('hub.connected', 'edge-w')))[0] as LogRecord;

      const service = serviceClient(child.view, HUB_A);
      // A registry whose every request is a new connection (the agent keeps none alive).
      const registry = keptAliveRegistry(child.view, HUB_A, hubAgent(child.view));
      let methodCrossed = false;
      for (let round = 1; round <= 8 && !methodCrossed; round++) {
        const { result } = await service.invokeDeviceMethod('edge-w', 'm', {
          methodName: 'whoami',
          payload: { round },
          responseTimeoutInSeconds: 120,
          connectTimeoutInSeconds: 60,
        });
        expect(result).toEqual({ status: 200, payload: { asked: { round } } });
        const call = (await loggedAll(child, about('hub.method', 'edge-w'), round))[round - 1] as LogRecord;
        expect(call).toMatchObject({ moduleId: 'm', outcome: 'answered' });
        if (call.worker !== worker) methodCrossed = true;
      }
      let desiredCrossed = false;
      for (let round = 1; round <= 8 && !desiredCrossed; round++) {
        await registry.updateModuleTwin('edge-w', 'm', { properties: { desired: { round } } }, '*');
        const change = (await loggedAll(child, about('hub.twin-updated', 'edge-w'), round))[round - 1] as LogRecord;
        expect(change).toMatchObject({ moduleId: 'm' });
        if (change.worker !== worker) {
          desiredCrossed = true;
          // The change made on the other worker reaches the module.
          await desiredReached(round);
        }
      }
      expect(methodCrossed, 'no method call was taken by the other worker').toBe(true);
      expect(desiredCrossed, 'no desired change was taken by the other worker').toBe(true);
    } finally {
      await module?.close();
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
