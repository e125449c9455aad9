import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { type CliEmulator, hubRefusal, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { createDeviceKey, type DeviceClient, deviceClient, keptAliveRegistry } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI) ends device connections as IoT Hub does whichever
// worker holds them, with the official SDKs (azure-iothub's Registry, azure-iot-device's Client over
// MQTT): a device id connected again on the other worker closes its older connection (IoT Hub keeps
// one MQTT connection per device, azure-docs iot-mqtt-connect-to-iot-hub), and a device disabled
// through the registry on one worker loses its connection on the other. The primary hands
// connections to the workers in turn. Which worker served a registry call is read from its log line
// afterwards: the registry's kept-alive connection stays on the worker the primary handed it to
// (the HTTPS server keeps an idle one 240 s, Azure's idle timeout), which the test does not choose,
// and should that connection close, the next one may go to either worker.

/** The `n`th log line (from 1) `match` accepts, once the emulator has written it. */
async function loggedNth(child: CliEmulator, match: (line: LogRecord) => boolean, n = 1): Promise<LogRecord> {
  for (;;) {
    const line = child.log().filter(match)[n - 1];
    if (line) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const about = (event: string, deviceId: string, worker?: unknown) => (line: LogRecord) =>
  line.event === event && line.deviceId === deviceId && (worker === undefined || line.worker === worker);

describe('dps-emulator start --workers: the hubs end connections on any worker', () => {
  it('a device id connected on the other worker closes its older connection; a device disabled on one worker is closed on the other', async () => {
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
      const keyOf = (deviceId: string) => createDeviceKey(registry, deviceId);

      // The same device id, connected again until the newer connection sits on the other worker
      // than the older one (on the same worker, aedes closes the older one itself).
      const twice = 'twice';
      const key = await keyOf(twice);
      let older: { worker: unknown; closesBefore: number } | undefined;
      let newer: { client: DeviceClient; worker: unknown } | undefined;
      for (let n = 1; n <= 8 && !newer; n++) {
        const client = await deviceClient(child.view, { hub: HUB_A, deviceId: twice, key });
        clients.push(client);
        await client.open();
        const { worker } = await loggedNth(child, about('hub.connected', twice), n);
        if (older && worker !== older.worker) newer = { client, worker };
        else older = { worker, closesBefore: child.log().filter(about('hub.disconnected', twice, worker)).length };
      }
      if (!older || !newer) throw new Error('no two connections of one device id on two workers');
      // The older connection, on the other worker, is closed; the newer one works and is the one
      // the registry shows connected.
      await loggedNth(child, about('hub.disconnected', twice, older.worker), older.closesBefore + 1);
      await newer.client.getTwin();
      expect((await registry.get(twice)).responseBody.connectionState).toBe('Connected');
      expect(child.log().some(about('hub.disconnected', twice, newer.worker))).toBe(false);

      // Disabled through the registry on one worker while connected to the other: a device
      // connected to each worker, both disabled one call right after the other, so that whichever
      // worker serves the calls one device is on the other; again with the next two should the
      // calls have reached each device's own worker. Either way the worker holding a device's
      // connection closes it.
      let disabled: { id: string; key: string; worker: unknown } | undefined;
      let created = 0;
      let attempts = 0;
      while (!disabled) {
        const pair = new Map<unknown, { id: string; key: string; worker: unknown }>();
        while (pair.size < 2) {
          if (created === 16) throw new Error('no device disabled by the other worker than the one holding it');
          const id = `disabled-${created++}`;
          const deviceKey = await keyOf(id);
          const client = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key: deviceKey });
          clients.push(client);
          await client.open();
          const { worker } = await loggedNth(child, about('hub.connected', id));
          if (!pair.has(worker)) pair.set(worker, { id, key: deviceKey, worker });
        }
        // Each pair in the other order than the one before: not even new connections for every
        // call, handed to the workers in turn, reach each device's own worker every time.
        const devices = [1, 2].map((worker) => pair.get(worker) as { id: string; key: string; worker: unknown });
        if (attempts++ % 2) devices.reverse();
        for (const device of devices) await registry.update({ deviceId: device.id, status: 'disabled' });
        for (const device of devices) {
          const servedBy = (await loggedNth(child, about('hub.device-updated', device.id))).worker;
          await loggedNth(child, about('hub.disconnected', device.id, device.worker));
          if (servedBy !== device.worker) disabled = device;
        }
      }
      const again = await deviceClient(child.view, { hub: HUB_A, deviceId: disabled.id, key: disabled.key });
      clients.push(again);
      await expect(again.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
      expect(await hubRefusal(child, disabled.id)).toMatchObject({
        reason: 'device-disabled',
        reported: 'device-disabled',
      });
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
