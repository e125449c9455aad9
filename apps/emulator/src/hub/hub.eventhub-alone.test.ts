// The built-in endpoint on an emulator of its own, read with @azure/event-hubs unmodified: the
// connection string with the library's own `hubPolicies` (it names a policy the endpoint takes, one
// with ServiceConnect), and open readers while the store cannot be read (a fault the file's other
// tests must not see: another connection to the state's SQLite file takes the events' table away,
// as a broken process would, and puts it back).
import { join } from 'node:path';
import { EventHubConsumerClient, latestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import type { LogRecord } from '@dpskit/node-kit';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventHubConsumerOptions } from '../sdk/index.js';
import { closedPortUrl, HUB_A, HUB_A_CONSUMER_GROUP } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, Message, registryClient } from '../testing/hub-sdk.js';
import { startTestBed, type TestBed } from '../testing/test-bed.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from './core/hub-service.js';

let bed: TestBed;
const logs: LogRecord[] = [];
/** Woken by each log record. */
const logWaiters = new Set<() => void>();
/** Resolves once `check` holds, looked at again at each log record. */
async function untilLogged(check: () => boolean): Promise<void> {
  while (!check()) await new Promise<void>((resolve) => logWaiters.add(resolve));
}

beforeAll(async () => {
  const closed = await closedPortUrl();
  bed = await startTestBed(closed, closed, {
    log: (record) => {
      logs.push(record);
      const waiters = [...logWaiters];
      logWaiters.clear();
      for (const wake of waiters) wake();
    },
    webView: false,
    hubPolicies: [
      // iothubowner without ServiceConnect first: a string naming it would be refused.
      { keyName: HUB_OWNER_POLICY_NAME, primaryKey: WELL_KNOWN_HUB_KEY, rights: ['RegistryRead', 'RegistryWrite'] },
      { keyName: 'device', primaryKey: Buffer.alloc(32, 1).toString('base64'), rights: ['DeviceConnect'] },
      { keyName: 'service', primaryKey: Buffer.alloc(32, 2).toString('base64'), rights: ['ServiceConnect'] },
    ],
  });
});
afterAll(async () => {
  await bed?.close();
});

describe('the built-in endpoint on an emulator of its own', () => {
  it('names in its connection string the first policy with ServiceConnect, which the endpoint takes', async () => {
    const connectionString = bed.emulator.eventHubConnectionString(HUB_A);
    expect(connectionString).toContain('SharedAccessKeyName=service;');
    const client = new EventHubConsumerClient('$Default', connectionString, {
      ...eventHubConsumerOptions(bed.emulator),
      retryOptions: { maxRetries: 0 },
    });
    try {
      expect(await client.getPartitionIds()).toEqual(['0', '1', '2', '3']);
    } finally {
      await client.close();
    }
  });

  it('looks at the store once a second for all its readers: one error line a poll when it cannot, then reads on', async () => {
    // Eight readers: all partitions, in $Default and in the hub's other consumer group, from latest
    // (a long wait: the SDK asks for nothing more meanwhile, so only the endpoint reads the store).
    const from = logs.length;
    const firsts: Promise<ReceivedEventData>[] = [];
    const clients = ['$Default', HUB_A_CONSUMER_GROUP].map(
      (group) =>
        new EventHubConsumerClient(
          group,
          bed.emulator.eventHubConnectionString(HUB_A),
          eventHubConsumerOptions(bed.emulator),
        ),
    );
    const subscriptions = clients.map((client) => {
      let resolve: (event: ReceivedEventData) => void = () => {};
      firsts.push(new Promise((r) => (resolve = r)));
      return client.subscribe(
        {
          processEvents: async (events) => {
            if (events[0]) resolve(events[0]);
          },
          processError: async () => {},
        },
        { startPosition: latestEventPosition, maxWaitTimeInSeconds: 300 },
      );
    });
    const broken = new Database(join(bed.emulator.stateDir, 'emulator.db'));
    try {
      await untilLogged(
        () => logs.slice(from).filter((l) => l.event === 'hub.eventhub' && l.sequenceNumber !== undefined).length >= 8,
      );
      // While the table is away: the endpoint's poll logs one line a second for the hub; a reader
      // looks itself only when its client gives it credit (once a link here, right after its
      // attach: the SDK asks for more only after a batch or its 300 s wait). Each reader looking
      // every second had one line a reader a second (8 here).
      const errors = (kind: 'poll' | 'reader') =>
        logs
          .slice(from)
          .filter(
            (l) =>
              l.event === 'hub.eventhub' &&
              l.level === 'error' &&
              (kind === 'poll' ? / partitions not read: / : / partition \d: events not read: /).test(l.msg),
          );
      broken.exec('ALTER TABLE hub_telemetry RENAME TO hub_telemetry_away');
      try {
        await untilLogged(() => errors('poll').length >= 2 || errors('reader').length > 8);
      } finally {
        broken.exec('ALTER TABLE hub_telemetry_away RENAME TO hub_telemetry');
      }
      expect(errors('reader').length).toBeLessThanOrEqual(8);
      expect(errors('poll')[0]?.msg).toMatch(/^hub-a\.azure-devices\.net: partitions not read: no such table/);

      // The table back, the readers read on: a device's message reaches both groups.
      const id = 'eh-alone-device';
      const device = await deviceClient(bed.emulator, {
        hub: HUB_A,
        deviceId: id,
        key: await createDeviceKey(registryClient(bed.emulator, HUB_A), id),
      });
      try {
        await device.open();
        await device.sendEvent(new Message('after the fault'));
      } finally {
        await device.close();
      }
      for (const first of await Promise.all(firsts)) expect(String(first.body)).toBe('after the fault');
    } finally {
      broken.close();
      for (const subscription of subscriptions) await subscription.close();
      for (const client of clients) await client.close();
    }
  });
});
