import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { about, type CliEmulator, hubRefusal, loggedAll, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { type DeviceClient, deviceClient, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): the emulated hub's pushes reach a device
// connected to the other worker than the one serving the registry call, with the official SDKs
// (azure-iothub's Registry, azure-iot-device's Client over MQTT). Which worker served a registry
// call is read from its log line afterwards: the registry's kept-alive connection stays on the
// worker the primary handed it to (the HTTPS server keeps an idle one 240 s, Azure's idle
// timeout), which the test does not choose, and should that connection close, the next one may go
// to either worker. So each check makes the same calls, one right after the other, for a device on
// each worker: whichever worker serves them, one device is on the other.

/** The first log line `match` accepts, once the emulator has written it. */
async function logged(child: CliEmulator, match: (line: LogRecord) => boolean): Promise<LogRecord> {
  return (await loggedAll(child, match))[0] as LogRecord;
}

/**
 * Listens to the device's desired properties, once the subscription is in place: a reported update
 * answered on the same MQTT connection follows the SUBSCRIBE that adding the listener sent.
 */
async function watchDesired(client: DeviceClient, listener: (delta: Record<string, unknown>) => void): Promise<void> {
  const twin = await client.getTwin();
  twin.on('properties.desired', listener);
  await new Promise<void>((resolve, reject) =>
    twin.properties.reported.update({ watching: true }, (err?: Error) => (err ? reject(err) : resolve())),
  );
}

interface Connected {
  id: string;
  client: DeviceClient;
  worker: unknown;
}

describe('dps-emulator start --workers: the hubs push across workers', () => {
  it('a desired-property update and a deletion served by one worker reach devices connected to the other', async () => {
    const unreachable = await closedPortUrl();
    // Debug: the hub's `hub.auth` line names each refused device (hubRefusal).
    const child = await startCliEmulator(testConfig(unreachable, unreachable), [
      '--workers',
      '2',
      '--log-level',
      'debug',
    ]);
    const clients: DeviceClient[] = [];
    try {
      const registry = keptAliveRegistry(child.view, HUB_A);
      const ids = Array.from({ length: 8 }, (_, i) => `pushed-${i}`);
      const keys = new Map<string, string>();
      for (const id of ids) {
        const created = (await registry.create({ deviceId: id })).responseBody;
        keys.set(id, created.authentication?.symmetricKey?.primaryKey as string);
      }
      const unused = new Set<Connected>();
      for (const id of ids) {
        const client = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key: keys.get(id) as string });
        clients.push(client);
        await client.open();
        unused.add({ id, client, worker: (await logged(child, about('hub.connected', id))).worker });
      }
      /**
       * A device connected to each worker (the primary hands connections to them in turn), not used
       * yet; each pair in the other order than the one before, so that not even new connections
       * for every call, handed to the workers in turn, reach each device's own worker every time.
       */
      let pairs = 0;
      const nextPair = (): Connected[] => {
        const order = pairs++ % 2 ? [2, 1] : [1, 2];
        const pair = order.map((worker) => [...unused].find((device) => device.worker === worker));
        if (!pair.every((device) => device !== undefined)) {
          throw new Error('no registry call was served by the other worker than the one holding its device');
        }
        for (const device of pair) unused.delete(device);
        return pair;
      };

      // Desired properties: each patch pushed to its device, in order, whichever worker served the
      // update; until a device got both of its updates from the other worker than its own.
      let watching: Connected | undefined;
      while (!watching) {
        const pair = nextPair();
        const patches = new Map(pair.map((device) => [device.id, [] as Record<string, unknown>[]]));
        for (const device of pair) {
          await watchDesired(device.client, (delta) => {
            if ('state' in delta) patches.get(device.id)?.push(delta);
          });
        }
        for (const state of ['first', 'second']) {
          for (const device of pair) await registry.updateTwin(device.id, { properties: { desired: { state } } }, '*');
        }
        for (const device of pair) {
          while ((patches.get(device.id)?.length ?? 0) < 2) await new Promise((resolve) => setTimeout(resolve, 20));
          expect(patches.get(device.id), device.id).toEqual([
            expect.objectContaining({ state: 'first', $version: 2 }),
            expect.objectContaining({ state: 'second', $version: 3 }),
          ]);
          const servedBy = (await loggedAll(child, about('hub.twin-updated', device.id), 2)).map((line) => line.worker);
          if (servedBy.every((worker) => worker !== device.worker)) watching = device;
        }
      }

      // Deletion: the device's connection is closed by the worker holding it, whichever worker
      // served the deletion. The SDK, which listens to desired properties, reconnects to restore its
      // subscription and is refused: the device is gone (it retries so for minutes before it reports
      // the disconnection). Until a deletion was served by the other worker than the device's.
      let deleted: Connected | undefined;
      while (!deleted) {
        const pair = nextPair();
        for (const device of pair) await watchDesired(device.client, () => {});
        for (const device of pair) await registry.delete(device.id);
        for (const device of pair) {
          const servedBy = (await logged(child, about('hub.device-deleted', device.id))).worker;
          expect((await logged(child, about('hub.disconnected', device.id))).worker, device.id).toBe(device.worker);
          expect(await hubRefusal(child, device.id)).toMatchObject({
            reason: 'device-not-found',
            reported: 'device-not-found',
          });
          if (servedBy !== device.worker) deleted = device;
        }
      }
      // The device whose twin was updated and not deleted stays connected.
      expect(child.log().some(about('hub.disconnected', watching.id))).toBe(false);
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
