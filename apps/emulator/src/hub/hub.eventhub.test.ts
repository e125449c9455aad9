// The hubs' Event Hubs-compatible built-in endpoint with the official packages only: devices send
// telemetry with azure-iot-device (MQTT, AMQP, HTTPS), @azure/event-hubs' EventHubConsumerClient
// reads it over AMQP over WebSockets (the CA given to its WebSocket, as a test that starts the
// emulator must). No timing is asserted; a "latest" reader waits for the emulator's debug line
// saying its link is attached before the device sends.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type EventHubConsumerClient as ConsumerClient,
  EventHubConsumerClient,
  EventHubProducerClient,
  type EventPosition,
  earliestEventPosition,
  latestEventPosition,
  type MessagingError,
  type ReceivedEventData,
} from '@azure/event-hubs';
import { createSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import type { EventContext } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBanner } from '../cli/banner.js';
import { eventHubConsumerOptions } from '../sdk/index.js';
import { HUB_A, HUB_A_CONSUMER_GROUP, HUB_B } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  type HubDeviceTransport,
  Message,
  registryClient,
} from '../testing/hub-sdk.js';
import { rheaConnect } from '../testing/raw-amqp.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { partitionOf } from './core/eventhub.js';

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];
const clients: ConsumerClient[] = [];
/** Woken by each log record (waits for a line are event-driven, not polls). */
const logWaiters = new Set<() => void>();

beforeAll(async () => {
  bed = await startTestBedWithWebhook({
    log: (record) => {
      logs.push(record);
      const waiters = [...logWaiters];
      logWaiters.clear();
      for (const wake of waiters) wake();
    },
    logLevel: 'debug',
  });
});
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => {});
  await bed?.close();
});

/** A consumer of `hub`'s built-in endpoint, from the emulator's connection string (configuration only). */
function consumer(
  hub = HUB_A,
  connectionString = bed.emulator.eventHubConnectionString(hub),
  consumerGroup = '$Default',
): ConsumerClient {
  const client = new EventHubConsumerClient(consumerGroup, connectionString, {
    ...reachEmulator(),
    retryOptions: { maxRetries: 0, timeoutInMs: 30_000 },
  });
  clients.push(client);
  return client;
}

/** The options that take an Event Hubs client to the emulator (leave out against Azure). */
function reachEmulator() {
  return eventHubConsumerOptions(bed.emulator);
}

/** A device of `hub` created through the registry, its client opened. */
async function openedDevice(id: string, transport: HubDeviceTransport, hub = HUB_A): Promise<DeviceClient> {
  const key = await createDeviceKey(registryClient(bed.emulator, hub), id);
  const client = await deviceClient(bed.emulator, { hub, deviceId: id, key, transport });
  await client.open();
  return client;
}

/** A new device of HUB_A sends `bodies` (JSON) over MQTT; resolves with its partition's id. */
async function sentOverMqtt(id: string, bodies: object[]): Promise<string> {
  const device = await openedDevice(id, 'mqtt');
  try {
    for (const body of bodies) await device.sendEvent(new Message(JSON.stringify(body)));
  } finally {
    await device.close();
  }
  return String(partitionOf(id));
}

/** The emulator's line saying a receiver of `partition` is attached (from the logs after `from`). */
async function attached(partition: number, from: number): Promise<void> {
  while (
    !logs
      .slice(from)
      .some((l) => l.event === 'hub.eventhub' && l.partition === partition && l.sequenceNumber !== undefined)
  )
    await new Promise<void>((resolve) => logWaiters.add(resolve));
}

/** The error codes subscriptions report (`processError`), and a wait for one of them. */
function errorCodes() {
  const seen = new Set<string>();
  const waiting = new Map<string, (() => void)[]>();
  return {
    processError: async (err: Error) => {
      const code = (err as MessagingError).code ?? err.name;
      seen.add(code);
      for (const wake of waiting.get(code) ?? []) wake();
      waiting.delete(code);
    },
    until: (code: string) =>
      seen.has(code)
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiting.set(code, [...(waiting.get(code) ?? []), resolve])),
  };
}

/** Subscribes to one partition (or all) from `startPosition` until `count` events arrived; rejects on an error. */
function receive(
  client: ConsumerClient,
  count: number,
  options: { partitionId?: string; startPosition: EventPosition; maxWaitTimeInSeconds?: number },
): Promise<ReceivedEventData[]> {
  return new Promise((resolve, reject) => {
    const received: ReceivedEventData[] = [];
    const handlers = {
      processEvents: async (events: ReceivedEventData[]) => {
        received.push(...events);
        if (received.length >= count) {
          await subscription.close();
          resolve(received);
        }
      },
      processError: async (err: Error) => {
        await subscription.close();
        reject(err);
      },
    };
    const subscribeOptions = {
      startPosition: options.startPosition,
      maxWaitTimeInSeconds: options.maxWaitTimeInSeconds ?? 1,
    };
    const subscription =
      options.partitionId === undefined
        ? client.subscribe(handlers, subscribeOptions)
        : client.subscribe(options.partitionId, handlers, subscribeOptions);
  });
}

describe('the built-in endpoint (Event Hubs-compatible) with @azure/event-hubs', () => {
  it('applies owner levels (a higher one disconnects the reader) and five readers without one per partition', async () => {
    // One subscriber a partition per client (the SDK's own rule): a client each.
    const errors = errorCodes();
    const from = logs.length;
    const handlers = { processEvents: async () => {}, processError: errors.processError };
    const low = consumer().subscribe('1', handlers, { ownerLevel: 1, startPosition: latestEventPosition });
    await attached(1, from);
    const high = consumer().subscribe(
      '1',
      { ...handlers, processError: async () => {} },
      {
        ownerLevel: 2,
        startPosition: latestEventPosition,
      },
    );
    await errors.until('ReceiverDisconnectedError');
    await low.close();
    await high.close();

    const quota = errorCodes();
    const readers = [];
    for (let i = 0; i < 6; i++)
      readers.push(
        consumer().subscribe(
          '2',
          { processEvents: async () => {}, processError: quota.processError },
          { startPosition: latestEventPosition },
        ),
      );
    await quota.until('QuotaExceededError');
    for (const reader of readers) await reader.close();
  });

  it('serves the consumer groups the config adds, each with its own readers and owner levels', async () => {
    const id = 'eh-consumer-groups-device';
    const partition = await sentOverMqtt(id, [{ n: 1 }, { n: 2 }]);
    // An owner (owner level 1) of the partition in $Default…
    const errors = errorCodes();
    const from = logs.length;
    const owner = consumer().subscribe(
      partition,
      { processEvents: async () => {}, processError: errors.processError },
      { ownerLevel: 1, startPosition: latestEventPosition },
    );
    await attached(Number(partition), from);
    try {
      // …keeps readers without one off it in $Default only: the configured group (named in any
      // case) reads the partition from its own position, from earliest.
      const analytics = consumer(HUB_A, undefined, HUB_A_CONSUMER_GROUP.toUpperCase());
      const events = await receive(analytics, 2, { partitionId: partition, startPosition: earliestEventPosition });
      expect(events.map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }]);
      const refused = await receive(consumer(), 1, {
        partitionId: partition,
        startPosition: earliestEventPosition,
      }).then(
        () => 'resolved',
        (err: MessagingError) => err.code ?? err.name,
      );
      expect(refused).toBe('ReceiverDisconnectedError');
    } finally {
      await owner.close();
    }
    // The banner lists a hub's consumer groups when it has more than $Default.
    const banner = formatBanner(bed.emulator);
    expect(banner).toContain(`      consumer groups  $Default, ${HUB_A_CONSUMER_GROUP}\n`);
    expect(banner.match(/consumer groups/g)).toHaveLength(1);
  });

  it('describes the hub and its four partitions', async () => {
    const client = consumer(HUB_B);
    expect(await client.getPartitionIds()).toEqual(['0', '1', '2', '3']);
    const properties = await client.getEventHubProperties();
    expect(properties).toMatchObject({ name: 'hub-b', partitionIds: ['0', '1', '2', '3'] });
    expect(properties.createdOn).toBeInstanceOf(Date);
    expect(await client.getPartitionProperties('3')).toMatchObject({
      eventHubName: 'hub-b',
      partitionId: '3',
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: -1,
      lastEnqueuedOffset: '-1',
      isEmpty: true,
    });
  });

  it('gives each device telemetry message as IoT Hub forwards it, on the device partition, from earliest', async () => {
    const id = 'eh-mqtt-device';
    const partition = String(partitionOf(id));
    const device = await openedDevice(id, 'mqtt');
    try {
      for (let i = 0; i < 3; i++) {
        const message = new Message(JSON.stringify({ n: i }));
        message.properties.add('colour', 'red');
        message.messageId = `m-${i}`;
        message.correlationId = `c-${i}`;
        message.contentType = 'application/json';
        message.contentEncoding = 'utf-8';
        // An IoT Plug and Play component's telemetry (the Node samples' messageSubjectProperty).
        if (i === 2) message.properties.add('$.sub', 'thermostat1');
        await device.sendEvent(message);
      }
    } finally {
      await device.close();
    }
    const client = consumer();
    const events = await receive(client, 3, { partitionId: partition, startPosition: earliestEventPosition });
    expect(events.map((e) => e.body)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(events.map((e) => e.sequenceNumber)).toEqual([0, 1, 2]);
    const [first, second] = events;
    expect(first).toMatchObject({
      offset: '0',
      messageId: 'm-0',
      correlationId: 'c-0',
      contentType: 'application/json',
      properties: { colour: 'red' },
      systemProperties: {
        'iothub-connection-device-id': id,
        'iothub-connection-auth-method':
          '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
        'iothub-message-source': 'Telemetry',
        contentEncoding: 'utf-8',
      },
    });
    expect(first?.enqueuedTimeUtc).toBeInstanceOf(Date);
    expect(first?.systemProperties?.['dt-subject']).toBeUndefined();
    expect(events[2]?.systemProperties?.['dt-subject']).toBe('thermostat1');
    expect(events[2]?.properties).toEqual({ colour: 'red' });
    expect(typeof first?.systemProperties?.['iothub-enqueuedtime']).toBe('number');
    expect(first?.systemProperties?.['iothub-connection-auth-generation-id']).toEqual(
      bed.emulator.hubDevices(HUB_A).find((d) => d.identity.deviceId === id)?.identity.generationId,
    );
    // Offsets count the bytes before each event.
    expect(Number(second?.offset)).toBe(Buffer.byteLength(JSON.stringify({ n: 0 })));

    const state = await client.getPartitionProperties(partition);
    expect(state).toMatchObject({ beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: 2, isEmpty: false });
    expect(state.lastEnqueuedOffset).toBe(events[2]?.offset);

    // From a sequence number, an offset (inclusive or not) and an enqueued time.
    const after = async (startPosition: EventPosition) =>
      (await receive(consumer(), 1, { partitionId: partition, startPosition }))[0]?.sequenceNumber;
    expect(await after({ sequenceNumber: 0 })).toBe(1);
    expect(await after({ sequenceNumber: 1, isInclusive: true })).toBe(1);
    expect(await after({ offset: second?.offset ?? '', isInclusive: true })).toBe(1);
    expect(await after({ offset: second?.offset ?? '' })).toBe(2);
    expect(await after({ enqueuedOn: new Date(0) })).toBe(0);
  });

  it('pushes new telemetry to a reader of every partition started at latest, from AMQP and HTTPS devices', async () => {
    const client = consumer();
    const ids = ['eh-amqp-device', 'eh-https-device'];
    const devices = [await openedDevice(ids[0] as string, 'amqp'), await openedDevice(ids[1] as string, 'https')];
    try {
      const from = logs.length;
      // A long wait: the SDK's own credit top-ups (each wait's end) would wake the links too.
      const events = receive(client, 2, { startPosition: latestEventPosition, maxWaitTimeInSeconds: 300 });
      for (let p = 0; p < 4; p++) await attached(p, from);
      const overAmqp = new Message('over amqp');
      overAmqp.properties.add('$.sub', 'thermostat2');
      await devices[0]?.sendEvent(overAmqp);
      await devices[1]?.sendEvent(new Message('over https'));
      const got = await events;
      // A body that is not JSON reaches the reader as its bytes (the SDK's data transformer).
      const bodies = got.map((e) => [e.systemProperties?.['iothub-connection-device-id'], String(e.body)]);
      expect(bodies.sort()).toEqual([
        ['eh-amqp-device', 'over amqp'],
        ['eh-https-device', 'over https'],
      ]);
      const amqpEvent = got.find((e) => String(e.body) === 'over amqp');
      expect(amqpEvent?.systemProperties?.['dt-subject']).toBe('thermostat2');
    } finally {
      for (const device of devices) await device.close();
    }
  });

  it("tracks the partition's last enqueued event for a reader that asks (trackLastEnqueuedEventProperties)", async () => {
    const id = 'eh-runtime-metric-device';
    const partition = await sentOverMqtt(id, [{ n: 1 }, { n: 2 }]);
    const client = consumer();
    const last = await client.getPartitionProperties(partition);
    const seen = await new Promise<{ sequenceNumber?: number; offset?: string; enqueuedOn?: Date; retrievedOn?: Date }>(
      (resolve, reject) => {
        const subscription = client.subscribe(
          partition,
          {
            processEvents: async (events, context) => {
              if (events.length === 0) return;
              await subscription.close();
              resolve({ ...context.lastEnqueuedEventProperties });
            },
            processError: async (err) => reject(err),
          },
          { startPosition: earliestEventPosition, trackLastEnqueuedEventProperties: true, maxWaitTimeInSeconds: 1 },
        );
      },
    );
    expect(seen.sequenceNumber).toBe(last.lastEnqueuedSequenceNumber);
    expect(seen.offset).toBe(last.lastEnqueuedOffset);
    expect(seen.enqueuedOn?.getTime()).toBe(last.lastEnqueuedOnUtc.getTime());
    expect(seen.retrievedOn).toBeInstanceOf(Date);
  });

  it('is reached over TLS on the AMQP port with the plain connection string and NODE_EXTRA_CA_CERTS', async () => {
    // The recipe for a process started after the emulator (its CA file known): no option at all.
    const script = `const { EventHubConsumerClient } = require('@azure/event-hubs');
      const client = new EventHubConsumerClient('$Default', process.env.EVENT_HUB_CS, { retryOptions: { maxRetries: 0 } });
      client.getEventHubProperties().then(
        (p) => { console.log(JSON.stringify(p.partitionIds)); return client.close(); },
        (e) => { console.error(e.code || e.message); process.exit(1); });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: {
        ...process.env,
        EVENT_HUB_CS: bed.emulator.eventHubConnectionString(HUB_A),
        NODE_EXTRA_CA_CERTS: bed.emulator.caCertPath,
      },
    });
    expect(JSON.parse(stdout)).toEqual(['0', '1', '2', '3']);
  });

  it("redirects a hub's own messages/events to the endpoint, as the Event Hubs samples' conversion reads it", async () => {
    // What the iothubConnectionString sample does (@azure/event-hubs samples): SASL PLAIN
    // {policy}@sas.root.{hub name} with an IoT Hub token for {host}/messages/events, a receiver on
    // amqps://{host}/messages/events/$management, and the amqp:link:redirect error's info.
    const { HostName, SharedAccessKeyName, SharedAccessKey } = Object.fromEntries(
      bed.emulator
        .hubConnectionString(HUB_A)
        .split(';')
        .map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]),
    ) as Record<string, string>;
    const redirectOf = (key: string) =>
      new Promise<{ condition?: string; info?: Record<string, unknown> } | undefined>((resolve) => {
        const connection = rheaConnect(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem, {
          hostname: HostName,
          username: `${SharedAccessKeyName}@sas.root.${HostName?.split('.')[0]}`,
          password: createSasToken({
            resource: `${HostName}/messages/events`,
            key,
            keyName: SharedAccessKeyName,
            expiresAt: Math.ceil(Date.now() / 1000) + 300,
            encodeResource: true,
          }),
        });
        const done = (error: unknown) => {
          resolve(error as never);
          connection.close();
        };
        connection.on('connection_open', () => {
          const receiver = connection.open_receiver({
            source: { address: `amqps://${HostName}/messages/events/$management` },
          });
          receiver.on('receiver_error', (context: EventContext) => done(context.receiver?.error));
        });
        connection.on('connection_error', (context: EventContext) => done(context.error ?? context.connection.error));
        connection.on('disconnected', (context: EventContext) => done(context.connection?.error ?? 'disconnected'));
      });
    const redirect = await redirectOf(SharedAccessKey ?? '');
    expect(redirect?.condition).toBe('amqp:link:redirect');
    const port = bed.emulator.endpoints.amqp?.port;
    expect(redirect?.info).toEqual({
      hostname: `localhost:${port}`,
      'network-host': 'localhost',
      port,
      address: `amqps://localhost:${port}/hub-a/$management`,
    });
    // The sample's own conversion of it, then a reader with it.
    const eventHubName = /:\d+\/(.*)\/\$management/i.exec(String(redirect?.info?.address))?.[1];
    const converted = `Endpoint=sb://${redirect?.info?.hostname}/;EntityPath=${eventHubName};SharedAccessKeyName=${SharedAccessKeyName};SharedAccessKey=${SharedAccessKey}`;
    expect(await consumer(HUB_A, converted).getPartitionIds()).toEqual(['0', '1', '2', '3']);
    // A wrong key: refused in SASL, with IoT Hub's outcome sys (2), which rhea reports so.
    expect(await redirectOf(Buffer.alloc(32, 7).toString('base64'))).toMatchObject({
      description: 'Failed to authenticate: 2',
    });
  });

  it('refuses what Event Hubs refuses with the errors the SDK names, and serves on', async () => {
    const code = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (err: MessagingError) => err.code ?? err.name,
      );
    const wrongKey = bed.emulator
      .eventHubConnectionString(HUB_A)
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
    expect(await code(consumer(HUB_A, wrongKey).getEventHubProperties())).toBe('UnauthorizedError');
    const noHub = bed.emulator.eventHubConnectionString(HUB_A).replace(/EntityPath=[^;]+/, 'EntityPath=no-such-hub');
    expect(await code(consumer(HUB_A, noHub).getEventHubProperties())).toBe('MessagingEntityNotFoundError');
    expect(await code(consumer().getPartitionProperties('9'))).toBe('ArgumentOutOfRangeError');
    const otherGroup = new EventHubConsumerClient('other', bed.emulator.eventHubConnectionString(HUB_A), {
      ...reachEmulator(),
      retryOptions: { maxRetries: 0 },
    });
    clients.push(otherGroup);
    expect(await code(receive(otherGroup, 1, { partitionId: '0', startPosition: earliestEventPosition }))).toBe(
      'MessagingEntityNotFoundError',
    );
    expect(await code(receive(consumer(), 1, { partitionId: '0', startPosition: { sequenceNumber: 1_000_000 } }))).toBe(
      'ArgumentOutOfRangeError',
    );
    // A producer: IoT Hub's built-in endpoint takes no events.
    const producer = new EventHubProducerClient(bed.emulator.eventHubConnectionString(HUB_A), {
      ...reachEmulator(),
      retryOptions: { maxRetries: 0 },
    });
    try {
      expect(await code(producer.sendBatch([{ body: 'not a device' }], { partitionId: '0' }))).toBe(
        'InvalidOperationError',
      );
    } finally {
      await producer.close();
    }
    // Served on, and no key or signature reached a log line.
    expect(await consumer().getPartitionIds()).toEqual(['0', '1', '2', '3']);
    const logged = JSON.stringify(logs);
    expect(logged).not.toContain('sig=');
    for (const policy of bed.emulator
      .hubConnectionString(HUB_A)
      .match(/SharedAccessKey=([^;]+)/)
      ?.slice(1) ?? [])
      expect(logged).not.toContain(policy);
  });
});
