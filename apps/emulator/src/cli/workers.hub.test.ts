import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { type CliEmulator, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { type DeviceClient, deviceClient, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): the emulated hub's pushes reach a device
// connected to the other worker than the one serving the registry call, with the official SDKs
// (azure-iothub's Registry, azure-iot-device's Client over MQTT). The registry sends every call
// over one kept-alive connection, so one worker serves them all; devices are connected until two
// sit on the other worker (the primary hands connections to the workers in turn).

/** The first log line `match` accepts, once the emulator has written it. */
async function logged(child: CliEmulator, match: (line: LogRecord) => boolean): Promise<LogRecord> {
  for (;;) {
    const line = child.log().find(match);
    if (line) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const about = (event: string, deviceId: string) => (line: LogRecord) =>
  line.event === event && line.deviceId === deviceId;

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

describe('dps-emulator start --workers: the hubs push across workers', () => {
  it('a desired-property update and a deletion served by one worker reach devices connected to the other', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2']);
    const clients: DeviceClient[] = [];
    try {
      const registry = keptAliveRegistry(child.view, HUB_A);
      const ids = Array.from({ length: 8 }, (_, i) => `pushed-${i}`);
      const keys = new Map<string, string>();
      for (const id of ids) {
        const created = (await registry.create({ deviceId: id })).responseBody;
        keys.set(id, created.authentication?.symmetricKey?.primaryKey as string);
      }
      const registryWorker = (await logged(child, about('hub.device-created', ids[0] as string))).worker;
      for (const id of ids)
        expect((await logged(child, about('hub.device-created', id))).worker, id).toBe(registryWorker);

      const elsewhere: { id: string; client: DeviceClient; worker: unknown }[] = [];
      for (const id of ids) {
        const client = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key: keys.get(id) as string });
        clients.push(client);
        await client.open();
        const { worker } = await logged(child, about('hub.connected', id));
        if (worker !== registryWorker) elsewhere.push({ id, client, worker });
        if (elsewhere.length === 2) break;
      }
      expect(elsewhere).toHaveLength(2);
      const [watching, deleted] = elsewhere as [(typeof elsewhere)[0], (typeof elsewhere)[0]];

      // Desired properties: each patch pushed to the device on the other worker, in order.
      const patches: Record<string, unknown>[] = [];
      await watchDesired(watching.client, (delta) => {
        if ('state' in delta) patches.push(delta);
      });
      await registry.updateTwin(watching.id, { properties: { desired: { state: 'first' } } }, '*');
      await registry.updateTwin(watching.id, { properties: { desired: { state: 'second' } } }, '*');
      while (patches.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(patches).toEqual([
        expect.objectContaining({ state: 'first', $version: 2 }),
        expect.objectContaining({ state: 'second', $version: 3 }),
      ]);
      const update = await logged(child, about('hub.twin-updated', watching.id));
      expect(update.worker).toBe(registryWorker);
      expect(update.worker).not.toBe(watching.worker);

      // Deletion: the device's connection, on the other worker, is closed. The SDK, which listens
      // to desired properties, reconnects to restore its subscription and is refused: the device
      // is gone (it retries so for minutes before it reports the disconnection).
      await watchDesired(deleted.client, () => {});
      await registry.delete(deleted.id);
      expect((await logged(child, about('hub.device-deleted', deleted.id))).worker).toBe(registryWorker);
      const closed = await logged(child, about('hub.disconnected', deleted.id));
      expect(closed.worker).toBe(deleted.worker);
      expect((await logged(child, about('hub.connect-refused', deleted.id))).reason).toBe('device-not-found');
      // The device that was not deleted stays connected.
      expect(child.log().some(about('hub.disconnected', watching.id))).toBe(false);
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
