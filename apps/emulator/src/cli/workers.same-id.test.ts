import { describe, expect, it } from 'vitest';
import { startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, groupDeviceKey, HUB_A, testConfig } from '../testing/fixtures.js';
import { register } from '../testing/sdk.js';
import { startWebhook } from '../testing/webhook-server.js';

// `dps-emulator start --workers 2` (the built CLI): two official-SDK devices registering the same
// registration id at the same moment over HTTPS run one after another, as in one process: the second
// allocation's webhook call names the first one's hub as the device's current one. Each request has
// a connection of its own, handed to the workers in turn; whether the two of a pair land on different
// workers depends on the order the eight connections of a round are accepted in (polls of earlier
// devices interleave), so a round whose pairs all met on one worker is followed by another, and the
// log says which worker ran each allocation. Every pair must be serialized; at least one must have
// crossed workers.

describe('dps-emulator start --workers: one registration id at once on two workers', () => {
  it('runs the two allocations one after another, the second seeing the first', async () => {
    const unreachable = await closedPortUrl();
    // Slow enough that the two allocations of a pair would overlap if they ran side by side.
    const webhook = await startWebhook(() => ({ body: { iotHubHostName: HUB_A }, delayMs: 300 }));
    const child = await startCliEmulator(testConfig(webhook.url, unreachable), ['--workers', '2']);
    try {
      let crossed = 0;
      // Rounds of four pairs until one crossed: a round's four all met on one worker once in a
      // full-suite run (load ~9); each round has about even odds per pair.
      for (let round = 0; round < 6 && crossed === 0; round++) {
        const ids = Array.from({ length: 4 }, (_, i) => `twice-${round}-${i}`);
        const results = await Promise.all(
          ids.flatMap((id) =>
            [0, 1].map(() => register(child.view, id, groupDeviceKey('custom', id), { transport: 'https' })),
          ),
        );
        for (const result of results) expect(result).toMatchObject({ status: 'assigned', assignedHub: HUB_A });

        const allocations = child.log().filter((line) => line.event === 'registration');
        for (const id of ids) {
          const calls = webhook.callsFor(id);
          expect(calls, id).toHaveLength(2);
          expect(calls[0]?.body.deviceRuntimeContext.currentIotHubHostName, id).toBeUndefined();
          expect(calls[1]?.body.deviceRuntimeContext.currentIotHubHostName, id).toBe(HUB_A);
          const workers = allocations.filter((line) => line.registrationId === id).map((line) => line.worker);
          expect(workers, id).toHaveLength(2);
          if (workers[0] !== workers[1]) crossed++;
        }
      }
      // The pairs that met on two workers are the ones the store serialized.
      expect(crossed).toBeGreaterThan(0);
    } finally {
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
      await webhook.close();
    }
  });
});
