import {
  EventHubConsumerClient,
  latestEventPosition,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { eventHubName } from '../hub/core/eventhub.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';
import { eventHubConsumerOptions } from '../sdk/index.js';
import { loggedAll, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, testConfig } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, keptAliveRegistry, Message } from '../testing/hub-sdk.js';

// `dps-emulator start --workers 2` (the built CLI): a reader of the built-in endpoint gets a device's
// telemetry whichever worker stored it. Each EventHubConsumerClient opens its own connection, which
// the primary hands to the workers in turn; which worker serves a reader is read from its
// `hub.eventhub` debug line. One message is read by a reader on each worker: at least one of them
// gets it from the store, written by the other worker.

describe('dps-emulator start --workers: the built-in endpoint across workers', () => {
  it('a message stored by one worker reaches readers on both', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), [
      '--workers',
      '2',
      '--amqp-port',
      '0',
      '--log-level',
      'debug',
    ]);
    const clients: EventHubConsumerClient[] = [];
    const subscriptions: Subscription[] = [];
    try {
      const { amqp } = child.view.endpoints;
      const connectionString = `Endpoint=sb://localhost:${amqp?.port}/;SharedAccessKeyName=${HUB_OWNER_POLICY_NAME};SharedAccessKey=${WELL_KNOWN_HUB_KEY};EntityPath=${eventHubName(HUB_A)}`;
      // Each reader's first event.
      const firsts: Promise<ReceivedEventData>[] = [];
      // Readers (all partitions, from latest) until their links are on both workers.
      const readerWorkers = new Set<unknown>();
      const isAttachLine = (l: LogRecord) => l.event === 'hub.eventhub' && l.sequenceNumber !== undefined;
      for (let n = 0; n < 6 && readerWorkers.size < 2; n++) {
        const client = new EventHubConsumerClient('$Default', connectionString, eventHubConsumerOptions(child.view));
        clients.push(client);
        firsts.push(
          new Promise((resolve) =>
            subscriptions.push(
              client.subscribe(
                {
                  processEvents: async (batch) => {
                    if (batch[0]) resolve(batch[0]);
                  },
                  processError: async () => {},
                },
                // A long wait: the SDK's own credit top-ups (each wait's end) would wake the link too.
                { startPosition: latestEventPosition, maxWaitTimeInSeconds: 300 },
              ),
            ),
          ),
        );
        // Its four links attached (one worker serves a connection; the readers attach one after
        // another, so the 4n-th to (4n+3)-th attach lines are this one's).
        const lines = await loggedAll(child, isAttachLine, 4 * (n + 1));
        readerWorkers.add((lines[4 * n] as LogRecord).worker);
      }
      expect(readerWorkers.size).toBe(2);

      const id = 'eventhub-worker-device';
      const registry = keptAliveRegistry(child.view, HUB_A);
      const device = await deviceClient(child.view, {
        hub: HUB_A,
        deviceId: id,
        key: await createDeviceKey(registry, id),
      });
      try {
        await device.open();
        await device.sendEvent(new Message('across workers'));
        await loggedAll(child, (l) => l.event === 'hub.telemetry' && l.deviceId === id);
      } finally {
        await device.close();
      }
      // Every reader gets it: those on the worker that did not store it, from the store.
      for (const first of await Promise.all(firsts)) {
        expect(String(first.body)).toBe('across workers');
        expect(first.systemProperties?.['iothub-connection-device-id']).toBe(id);
      }
    } finally {
      for (const subscription of subscriptions) await subscription.close();
      for (const client of clients) await client.close();
      await child.stop();
    }
  });
});
