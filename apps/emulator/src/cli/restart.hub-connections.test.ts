import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliEmulator, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start` again on the state folder of one that was killed (SIGKILL: it never wrote
// its devices' disconnection): the registry no longer shows them Connected (hub/core/
// connection-leftovers.ts). Before, they stayed Connected, in queries and the web view too, until
// each connected and closed again.

/** A retry policy that never retries: the client does not dial the killed emulator again. */
const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => -1 };

describe('dps-emulator start on the state folder of a killed one', () => {
  it('shows Disconnected the devices the killed one left Connected', async () => {
    const unreachable = await closedPortUrl();
    const config = testConfig(unreachable, unreachable);
    const killed = await startCliEmulator(config);
    let again: CliEmulator | undefined;
    try {
      const id = 'killed-while-connected';
      const registry = keptAliveRegistry(killed.view, HUB_A);
      const key = await createDeviceKey(registry, id);
      const client = await deviceClient(killed.view, { hub: HUB_A, deviceId: id, key });
      client.setRetryPolicy(noRetry);
      await client.open();
      expect((await registry.get(id)).responseBody.connectionState).toBe('Connected');
      await killed.kill();
      await client.close().catch(() => {});

      again = await startCliEmulator(config, [], undefined, { stateDir: killed.stateDir });
      const device = (await keptAliveRegistry(again.view, HUB_A).get(id)).responseBody;
      expect(device.connectionState).toBe('Disconnected');
      expect(again.log().find((line) => line.event === 'hub.connections')).toMatchObject({ count: 1 });
    } finally {
      await killed.kill();
      await again?.stop();
      rmSync(dirname(killed.stateDir), { recursive: true, force: true });
    }
  });
});
