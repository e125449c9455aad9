import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { loggedAll, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import {
  amqpServiceClient,
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  keptAliveRegistry,
} from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): a cloud-to-device message sent with azure-iothub's
// Client.send over AMQP reaches an azure-iot-device client over MQTT or AMQP whichever worker queued it and
// whichever holds the device: the queue is in the store, and the queuing worker's `c2d` push tells
// the worker holding the device. Each service client opens its own AMQP connection, which the
// primary hands to the workers in turn; which worker queued a message is read from its `hub.c2d`
// line (outcome enqueued), which worker holds a device from its `hub.connected` line.

describe('dps-emulator start --workers: cloud-to-device messages across workers', () => {
  it('a message queued by one worker reaches a device (MQTT, AMQP) connected to the other, and its ack completes it', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), ['--workers', '2']);
    const clients: DeviceClient[] = [];
    const received = new Map<string, string[]>();
    try {
      const registry = keptAliveRegistry(child.view, HUB_A);
      // A device of each transport on each worker: `{transport} {worker}` -> its worker and id.
      const workers = new Map<string, { worker: unknown; id: string }>();
      // Devices until there is one of each transport on each worker (the primary hands connections in turn).
      for (let n = 0; n < 16 && workers.size < 4; n++) {
        const id = `c2d-worker-${n}`;
        const transport = n % 2 === 0 ? 'mqtt' : 'amqp';
        const client = await deviceClient(child.view, {
          hub: HUB_A,
          deviceId: id,
          key: await createDeviceKey(registry, id),
          transport,
        });
        clients.push(client);
        received.set(id, []);
        client.on('message', (message: { data: Buffer }) => {
          received.get(id)?.push(message.data.toString());
          void client.complete(message as never);
        });
        await client.open();
        // on('message') subscribes in the background; the SDK's enableC2D says when it is done.
        await new Promise<void>((resolve, reject) =>
          (client as unknown as { _enableC2D(cb: (err?: Error) => void): void })._enableC2D((err) =>
            err ? reject(err) : resolve(),
          ),
        );
        const { worker } = (
          await loggedAll(child, (l) => l.event === 'hub.connected' && l.deviceId === id)
        )[0] as LogRecord;
        const key = `${transport} ${String(worker)}`;
        if (!workers.has(key)) workers.set(key, { worker, id });
        else await clients.pop()?.close();
      }
      expect(workers.size, [...workers.keys()].join(', ')).toBe(4);

      // Two messages for the device on each worker, each from a new service connection (the primary
      // hands them to the workers in turn, so one of the two is queued by the other worker), until
      // one for each device was; every one reaches its device and is completed.
      const crossed = new Set<string>();
      const sent = new Map<string, number>();
      for (let round = 1; round <= 4 && crossed.size < 4; round++) {
        for (const { worker, id } of workers.values()) {
          for (let copy = 0; copy < 2; copy++) {
            const n = (sent.get(id) ?? 0) + 1;
            sent.set(id, n);
            const service = amqpServiceClient(child.view, HUB_A);
            try {
              await service.send(id, `message ${n}`);
            } finally {
              await service.close();
            }
            const queued = await loggedAll(
              child,
              (l) => l.event === 'hub.c2d' && l.deviceId === id && l.outcome === 'enqueued',
              n,
            );
            if ((queued[n - 1] as LogRecord).worker !== worker) crossed.add(id);
            await loggedAll(child, (l) => l.event === 'hub.c2d' && l.deviceId === id && l.outcome === 'completed', n);
            expect(received.get(id)).toContain(`message ${n}`);
          }
        }
      }
      expect(crossed.size, 'a device got no message queued by the other worker').toBe(4);
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
