import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { about, loggedAll, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  keptAliveRegistry,
  serviceClient,
} from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI) with devices over azure-iot-device-amqp's Amqp:
// a direct method invoked with azure-iothub's Client and a desired-property change made through
// the registry reach an AMQP device whichever worker takes the request and whichever holds the
// device (through the store's push table, as for MQTT devices). Which worker holds a device is
// read from its `hub.connected` line, which took a call from its `hub.method` line. A device that
// connects again (over MQTT or AMQP) on the other worker loses its older connection there.

describe('dps-emulator start --workers: AMQP devices across workers', () => {
  it('method calls and desired changes made on the other worker reach the device', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2', '--amqp-port', '0']);
    const clients: DeviceClient[] = [];
    try {
      const registry = keptAliveRegistry(child.view, HUB_A);
      const service = serviceClient(child.view, HUB_A);
      const workers = new Map<unknown, { id: string; desired: Record<string, unknown>[] }>();
      for (let n = 0; n < 8 && workers.size < 2; n++) {
        const id = `amqp-worker-${n}`;
        const client = await deviceClient(child.view, {
          hub: HUB_A,
          deviceId: id,
          key: await createDeviceKey(registry, id),
          transport: 'amqp',
        });
        clients.push(client);
        await client.open();
        // The methods' links attached first (the SDK's methods client answers an attach asked while
        // it attaches never), then the handler.
        await new Promise<void>((resolve, reject) =>
          (client as unknown as { _enableMethods(cb: (err?: Error) => void): void })._enableMethods((err) =>
            err ? reject(err) : resolve(),
          ),
        );
        client.onDeviceMethod('whoami', (request, response) => {
          void response.send(200, { id, asked: request.payload });
        });
        const desired: Record<string, unknown>[] = [];
        const twin = await client.getTwin();
        twin.on('properties.desired', (delta: Record<string, unknown>) => desired.push(delta));
        await new Promise<void>((resolve, reject) =>
          (
            client as unknown as {
              _transport: { enableTwinDesiredPropertiesUpdates(cb: (err?: Error) => void): void };
            }
          )._transport.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve())),
        );
        const { worker } = (await loggedAll(child, about('hub.connected', id)))[0] as LogRecord;
        if (!workers.has(worker)) workers.set(worker, { id, desired });
      }
      expect(workers.size).toBe(2);

      const crossed = new Set<string>();
      for (let round = 1; round <= 8 && crossed.size < 2; round++) {
        for (const [worker, { id }] of workers) {
          const { result } = await service.invokeDeviceMethod(id, {
            methodName: 'whoami',
            payload: { round },
            responseTimeoutInSeconds: 120,
          });
          expect(result).toEqual({ status: 200, payload: { id, asked: { round } } });
          const lines = await loggedAll(child, about('hub.method', id), round);
          const taken = lines[round - 1] as LogRecord;
          expect(taken).toMatchObject({ outcome: 'answered', status: 200 });
          if (taken.worker !== worker) crossed.add(id);
        }
      }
      expect(crossed.size, 'no call was taken by the other worker than its device').toBe(2);

      // A desired change through the registry (a request any worker may take) reaches each device.
      for (const { id, desired } of workers.values()) {
        const { etag } = (await registry.getTwin(id)).responseBody;
        await registry.updateTwin(id, { properties: { desired: { mode: 'eco' } } }, etag);
        await expect.poll(() => desired.some((delta) => delta.mode === 'eco'), { timeout: 60_000 }).toBe(true);
      }
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });

  it('a device connected again on the other worker keeps only the newer connection, whatever the transports', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2', '--amqp-port', '0']);
    const clients: DeviceClient[] = [];
    try {
      const id = 'amqp-worker-twice';
      const registry = keptAliveRegistry(child.view, HUB_A);
      const key = await createDeviceKey(registry, id);
      const filler = {
        hub: HUB_A,
        deviceId: 'amqp-worker-filler',
        key: await createDeviceKey(registry, 'amqp-worker-filler'),
      };
      // The older connection's SDK client never retries (a retrying one would connect again at once
      // and become the newer in turn, as against IoT Hub).
      const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => -1 };
      const crossed = new Set<string>();
      // Pairs of connections, each newer one over the other transport, until each transport's
      // connection was closed by a newer one on the other worker (the primary hands connections in turn).
      for (let n = 0; n < 16 && crossed.size < 2; n++) {
        const [older, newer] = n % 2 === 0 ? (['amqp', 'mqtt'] as const) : (['mqtt', 'amqp'] as const);
        const first = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key, transport: older });
        first.setRetryPolicy(noRetry);
        clients.push(first);
        await first.open();
        const second = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key, transport: newer });
        clients.push(second);
        const closed = new Promise((resolve) => first.once('disconnect', resolve));
        await second.open();
        await closed;
        const lines = await loggedAll(child, about('hub.connected', id), 2 * n + 2);
        if ((lines[2 * n] as LogRecord).worker !== (lines[2 * n + 1] as LogRecord).worker) crossed.add(older);
        else {
          // Both on one worker (each transport's connections are handed in turn, so a pair keeps
          // landing together): one more MQTT connection moves that transport's turn on.
          const moved = await deviceClient(child.view, filler);
          await moved.open();
          await moved.close();
        }
        // The newer connection works; then it goes too, before the next pair.
        await second.getTwin();
        await Promise.allSettled([first.close(), second.close()]);
      }
      expect([...crossed].sort(), 'no older connection was closed from the other worker').toEqual(['amqp', 'mqtt']);
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
