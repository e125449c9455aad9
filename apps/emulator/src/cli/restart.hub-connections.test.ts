import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliEmulator, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { createDeviceKey, type DeviceClient, deviceClient, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start` again on the state folder of one that was killed (SIGKILL: it never wrote
// its devices' disconnection): the registry no longer shows them Connected (hub/core/
// connection-leftovers.ts). Before, they stayed Connected, in queries and the web view too, until
// each connected and closed again.

/** A retry policy that never retries: the client does not dial the killed emulator again. */
const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => -1 };
const clients: DeviceClient[] = [];

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

describe('dps-emulator start --workers on the state folder of a killed one', () => {
  it('the first worker marks Disconnected what the killed workers left Connected; the others serve on', async () => {
    const unreachable = await closedPortUrl();
    const config = testConfig(unreachable, unreachable);
    const killed = await startCliEmulator(config, ['--workers', '2']);
    let again: CliEmulator | undefined;
    // Every process of it, workers first: a worker whose primary is gone stops cleanly (and writes
    // its devices' disconnection), which a crash of the whole does not.
    const workers = () =>
      execFileSync('pgrep', ['-P', String(killed.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
    try {
      const registry = keptAliveRegistry(killed.view, HUB_A);
      const ids = ['killed-worker-a', 'killed-worker-b', 'killed-worker-c'];
      for (const id of ids) {
        const client = await deviceClient(killed.view, {
          hub: HUB_A,
          deviceId: id,
          key: await createDeviceKey(registry, id),
        });
        client.setRetryPolicy(noRetry);
        await client.open();
        clients.push(client);
      }
      for (const id of ids) expect((await registry.get(id)).responseBody.connectionState).toBe('Connected');
      for (const pid of workers()) process.kill(pid, 'SIGKILL');
      await killed.kill();

      again = await startCliEmulator(config, ['--workers', '2'], undefined, { stateDir: killed.stateDir });
      const after = keptAliveRegistry(again.view, HUB_A);
      for (const id of ids) expect((await after.get(id)).responseBody.connectionState).toBe('Disconnected');
      const lines = again.log().filter((line) => line.event === 'hub.connections');
      expect(lines).toEqual([expect.objectContaining({ count: 3, worker: 1 })]);
      // A device connects to the restarted workers and is Connected (no later start undid it).
      const [first = ''] = ids;
      const client = await deviceClient(again.view, {
        hub: HUB_A,
        deviceId: first,
        key: (await after.get(first)).responseBody.authentication?.symmetricKey?.primaryKey ?? '',
      });
      await client.open();
      clients.push(client);
      expect((await after.get(first)).responseBody.connectionState).toBe('Connected');
    } finally {
      for (const client of clients.splice(0)) await client.close().catch(() => {});
      await killed.kill();
      await again?.stop();
      rmSync(dirname(killed.stateDir), { recursive: true, force: true });
    }
  });
});
