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

// `dps-emulator start --workers 2` (the built CLI): a direct method invoked with azure-iothub's
// Client reaches an azure-iot-device MQTT client whichever worker takes the call and whichever
// holds the device: the call goes through the store to the worker holding the device, and the
// device's answer comes back the same way. The service client opens a new connection for every call
// (no keep-alive), which the primary hands to the workers in turn; which worker took a call is read
// from its `hub.method` line, which worker holds a device from its `hub.connected` line.

describe('dps-emulator start --workers: direct methods across workers', () => {
  it('a call taken by one worker reaches a device connected to the other, and its answer comes back', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2']);
    const clients: DeviceClient[] = [];
    try {
      const registry = keptAliveRegistry(child.view, HUB_A);
      const service = serviceClient(child.view, HUB_A);
      const workers = new Map<unknown, string>();
      // Devices until one is connected to each worker (the primary hands connections in turn).
      for (let n = 0; n < 8 && workers.size < 2; n++) {
        const id = `method-worker-${n}`;
        const client = await deviceClient(child.view, {
          hub: HUB_A,
          deviceId: id,
          key: await createDeviceKey(registry, id),
        });
        clients.push(client);
        await client.open();
        client.onDeviceMethod('whoami', (request, response) => {
          void response.send(200, { id, asked: request.payload });
        });
        await new Promise<void>((resolve, reject) =>
          (client as unknown as { _enableMethods(cb: (err?: Error) => void): void })._enableMethods((err) =>
            err ? reject(err) : resolve(),
          ),
        );
        const { worker } = (await loggedAll(child, about('hub.connected', id)))[0] as LogRecord;
        if (!workers.has(worker)) workers.set(worker, id);
      }
      expect(workers.size).toBe(2);

      // Calls for the device on each worker, each on a new connection, until a call for each device
      // was taken by the other worker than its own; every call is answered by its device.
      const crossed = new Set<string>();
      for (let round = 1; round <= 8 && crossed.size < 2; round++) {
        for (const [worker, id] of workers) {
          const { result } = await service.invokeDeviceMethod(id, {
            methodName: 'whoami',
            payload: { round },
            responseTimeoutInSeconds: 120,
          });
          expect(result).toEqual({ status: 200, payload: { id, asked: { round } } });
          const lines = await loggedAll(child, about('hub.method', id), round);
          const taken = lines[round - 1] as LogRecord;
          expect(taken).toMatchObject({ outcome: 'answered', status: 200, methodName: 'whoami' });
          if (taken.worker !== worker) crossed.add(id);
        }
      }
      expect(crossed.size, 'no call was taken by the other worker than its device').toBe(2);

      // A device connected to a worker without listening to methods: 404103 from whichever worker.
      const quiet = 'method-worker-quiet';
      const quietClient = await deviceClient(child.view, {
        hub: HUB_A,
        deviceId: quiet,
        key: await createDeviceKey(registry, quiet),
      });
      clients.push(quietClient);
      await quietClient.open();
      for (let round = 0; round < 2; round++) {
        const err = await service.invokeDeviceMethod(quiet, { methodName: 'whoami' }).then(
          () => undefined,
          (e: Error & { responseBody?: string }) => e,
        );
        expect(JSON.parse(JSON.parse(err?.responseBody ?? '{}').Message).errorCode).toBe(404103);
      }
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
