import { describe, expect, it } from 'vitest';
import { startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { hubAgent, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): the registry's reads (list, statistics, twin
// queries) answer from the store, whichever worker takes them. The devices are written on one
// kept-alive connection (one worker); each read then goes on a new connection (no keep-alive), which
// the primary hands to the workers in turn: of four reads in a row, some are taken by the worker
// that did not write, and every one answers every device.

describe('dps-emulator start --workers: the registry reads from the store', () => {
  it('lists, counts and queries devices written through another worker', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2']);
    try {
      const writer = keptAliveRegistry(child.view, HUB_A);
      const ids = ['wq-1', 'wq-2', 'wq-3'];
      for (const deviceId of ids) {
        await writer.create({ deviceId });
        await writer.updateTwin(deviceId, { tags: { fleet: 'workers' } }, '*');
      }
      await writer.update({ deviceId: 'wq-3', status: 'disabled' });
      const reader = keptAliveRegistry(child.view, HUB_A, hubAgent(child.view));
      for (let n = 0; n < 4; n++) {
        const query = reader.createQuery("SELECT * FROM devices WHERE tags.fleet = 'workers'", 2);
        const found: string[] = [];
        while (query.hasMoreResults) found.push(...(await query.nextAsTwin()).result.map((t) => t.deviceId));
        expect(found).toEqual(ids);
        expect((await reader.list()).responseBody.map((d) => d.deviceId)).toEqual(expect.arrayContaining(ids));
        expect((await reader.getRegistryStatistics()).responseBody).toMatchObject({ disabledDeviceCount: 1 });
      }
    } finally {
      await child.stop();
    }
  });
});
