// azure-iot-device's ModuleClient over MQTT against the emulated hubs, with the official packages
// only: a module of a device created through azure-iothub's Registry connects with its own
// connection string, sends telemetry, reads and reports its module twin, gets desired-property
// pushes, answers direct methods from Client.invokeDeviceMethod(deviceId, moduleId, …), beside
// its device's own connection; and what the hub refuses or closes.
import { X509Certificate } from 'node:crypto';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceMqtt from 'azure-iot-device-mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeviceClient, eventHubConsumerOptions } from '../sdk/index.js';
import { createTestDeviceCertificate } from '../testing/certificates.js';
import { HUB_A } from '../testing/fixtures.js';
import { type HubModuleClient, moduleClient } from '../testing/hub-module-sdk.js';
import {
  deviceClient,
  type HubServiceClient,
  Message,
  nextHubEvent,
  type RegistryClient,
  registryClient,
  serviceClient,
} from '../testing/hub-sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { partitionOf } from './core/eventhub.js';

const { ModuleClient } = deviceSdk;

let bed: TestBedWithWebhook;
let registry: RegistryClient;
let service: HubServiceClient;

beforeAll(async () => {
  bed = await startTestBedWithWebhook();
  registry = registryClient(bed.emulator, HUB_A);
  service = serviceClient(bed.emulator, HUB_A);
});
afterAll(async () => {
  await bed?.close();
});

/** A module added through the registry on a new device; resolves with the module's primary key. */
async function addModule(deviceId: string, moduleId: string): Promise<string> {
  await registry.create({ deviceId });
  const added = (await registry.addModule({ deviceId, moduleId })).responseBody;
  return added.authentication?.symmetricKey?.primaryKey ?? '';
}

async function openModule(deviceId: string, moduleId: string, key: string): Promise<HubModuleClient> {
  const client = await moduleClient(bed.emulator, { hub: HUB_A, deviceId, moduleId, key });
  await client.open();
  return client;
}

describe('ModuleClient over MQTT', () => {
  it('connects as its module, sends telemetry and is shown connected, beside its device', async () => {
    const key = await addModule('mod-dev-1', 'sensor');
    const deviceKey = (await registry.get('mod-dev-1')).responseBody.authentication?.symmetricKey?.primaryKey ?? '';
    const connected = nextHubEvent(bed.emulator, (e) => e.kind === 'connected' && e.deviceId === 'mod-dev-1');
    const module = await openModule('mod-dev-1', 'sensor', key);
    expect(await connected).toMatchObject({ hub: HUB_A, deviceId: 'mod-dev-1', moduleId: 'sensor', transport: 'mqtt' });
    expect((await registry.getModule('mod-dev-1', 'sensor')).responseBody.connectionState).toBe('Connected');
    // The module's connection is not its device's: the device is still Disconnected, then both are connected.
    expect((await registry.get('mod-dev-1')).responseBody.connectionState).toBe('Disconnected');
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: 'mod-dev-1', key: deviceKey });
    await device.open();

    const message = new Message('{"temperature":21}');
    message.properties.add('alert', 'no');
    await module.sendEvent(message);
    await device.sendEvent(new Message('from the device'));
    const kept = bed.emulator.telemetry(HUB_A, 'mod-dev-1');
    expect(kept.map(({ moduleId, body, properties }) => ({ moduleId, body: body.toString(), properties }))).toEqual([
      { moduleId: 'sensor', body: '{"temperature":21}', properties: { alert: 'no' } },
      { moduleId: undefined, body: 'from the device', properties: {} },
    ]);
    expect((await registry.getModule('mod-dev-1', 'sensor')).responseBody.connectionState).toBe('Connected');
    expect((await registry.get('mod-dev-1')).responseBody.connectionState).toBe('Connected');

    // The library's view of the same module: its identity and twin as the store holds them.
    expect(bed.emulator.hubModules('mod-dev-1', HUB_A).map((m) => [m.identity.moduleId, m.connectionState])).toEqual([
      ['sensor', 'Connected'],
    ]);
    expect(bed.emulator.hubModules('mod-dev-1')).toHaveLength(1);
    const closed = nextHubEvent(bed.emulator, (e) => e.kind === 'disconnected' && e.deviceId === 'mod-dev-1');
    await module.close();
    expect(await closed).toMatchObject({ moduleId: 'sensor' });
    expect((await registry.getModule('mod-dev-1', 'sensor')).responseBody.connectionState).toBe('Disconnected');
    await device.close();
  });

  it('reads and reports its module twin and gets its desired properties, apart from the device twin', async () => {
    const key = await addModule('mod-dev-2', 'filter');
    await registry.updateModuleTwin('mod-dev-2', 'filter', { properties: { desired: { threshold: 1 } } }, '*');
    const module = await openModule('mod-dev-2', 'filter', key);
    const twin = await module.getTwin();
    expect(twin.properties.desired).toMatchObject({ threshold: 1 });
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ state: 'running' }, (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    const moduleTwin = (await registry.getModuleTwin('mod-dev-2', 'filter')).responseBody;
    expect(moduleTwin.properties.reported).toMatchObject({ state: 'running' });
    expect((await registry.getTwin('mod-dev-2')).responseBody.properties.reported).not.toHaveProperty('state');

    // A desired change through the registry reaches the module (the SDK reads the twin again when
    // it subscribes, so the value arrives whichever comes first).
    const desired = new Promise<unknown>((resolve) =>
      twin.on('properties.desired', (patch: { threshold?: number }) => {
        if (patch.threshold === 5) resolve(patch);
      }),
    );
    await registry.updateModuleTwin('mod-dev-2', 'filter', { properties: { desired: { threshold: 5 } } }, '*');
    expect(await desired).toMatchObject({ threshold: 5 });
    await module.close();
  });

  it("answers Client.invokeDeviceMethod(deviceId, moduleId, …): the module's method, not the device's", async () => {
    const key = await addModule('mod-dev-3', 'worker');
    const module = await openModule('mod-dev-3', 'worker', key);
    module.onMethod('reboot', (request, response) => {
      void response?.send(200, { rebooted: request?.payload });
    });
    // connectTimeoutInSeconds: the call waits for the module's methods subscription (the SDK subscribes in the background).
    const result = await service.invokeDeviceMethod('mod-dev-3', 'worker', {
      methodName: 'reboot',
      payload: { delay: 0 },
      responseTimeoutInSeconds: 30,
      connectTimeoutInSeconds: 30,
    });
    expect(result.result).toEqual({ status: 200, payload: { rebooted: { delay: 0 } } });
    // The device itself is not connected: its own method is 404103, the module's call went to the module.
    const device = await service.invokeDeviceMethod('mod-dev-3', { methodName: 'reboot' }).then(
      () => undefined,
      (err: { response?: { headers?: Record<string, string> } }) => err.response?.headers?.['iothub-errorcode'],
    );
    expect(device).toBe('DeviceNotOnline');
    await module.close();
  });

  it("refuses a wrong key or an unknown module, and closes a removed module's connection", async () => {
    const key = await addModule('mod-dev-4', 'm');
    const refused = (moduleId: string, withKey: string) =>
      new Promise<{ reason: string; error: Error }>((resolve, reject) => {
        const event = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.deviceId === 'mod-dev-4');
        moduleClient(bed.emulator, { hub: HUB_A, deviceId: 'mod-dev-4', moduleId, key: withKey })
          .then((client) => client.open())
          .then(
            () => reject(new Error(`${moduleId} connected`)),
            async (error: Error) => {
              const e = await event;
              resolve({ reason: e.kind === 'connect-refused' ? `${e.moduleId}:${e.reason}` : '', error });
            },
          );
      });
    const deviceKey = (await registry.get('mod-dev-4')).responseBody.authentication?.symmetricKey?.primaryKey ?? '';
    // The device's key does not sign for its module: each module has its own credentials.
    const wrongKey = await refused('m', deviceKey);
    expect(wrongKey.reason).toBe('m:signature-mismatch');
    expect(wrongKey.error.name).toBe('UnauthorizedError');
    expect((await refused('other', key)).reason).toBe('other:module-not-found');

    const module = await openModule('mod-dev-4', 'm', key);
    // The SDK notices a close when it listens to a feature (the twin's desired properties) and
    // reconnects, which the hub then refuses: the module is gone.
    const twin = await module.getTwin();
    twin.on('properties.desired', () => {});
    const disconnected = nextHubEvent(bed.emulator, (e) => e.kind === 'disconnected' && e.moduleId === 'm');
    const reconnect = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.moduleId === 'm');
    await registry.removeModule('mod-dev-4', 'm');
    expect(await disconnected).toMatchObject({ deviceId: 'mod-dev-4' });
    expect(await reconnect).toMatchObject({ deviceId: 'mod-dev-4', reason: 'module-not-found' });
    await module.close();
  });

  it("disabling or deleting its device closes a module's connection; a disabled device's module is refused", async () => {
    const key = await addModule('mod-dev-5', 'm');
    const listen = async () => {
      const module = await openModule('mod-dev-5', 'm', key);
      // Listening to a feature, the SDK notices the close (and reconnects, refused).
      (await module.getTwin()).on('properties.desired', () => {});
      return module;
    };
    const closed = (reason: string) =>
      Promise.all([
        nextHubEvent(
          bed.emulator,
          (e) => e.kind === 'disconnected' && e.moduleId === 'm' && e.deviceId === 'mod-dev-5',
        ),
        nextHubEvent(
          bed.emulator,
          (e) =>
            e.kind === 'connect-refused' && e.moduleId === 'm' && e.deviceId === 'mod-dev-5' && e.reason === reason,
        ),
      ]);
    const first = await listen();
    const disabled = closed('device-disabled');
    await registry.update({ deviceId: 'mod-dev-5', status: 'disabled' });
    await disabled;
    await first.close();

    await registry.update({ deviceId: 'mod-dev-5', status: 'enabled' });
    const second = await listen();
    const deleted = closed('device-not-found');
    await registry.delete('mod-dev-5');
    await deleted;
    await second.close();
  });
});

describe('ModuleClient over AMQP', () => {
  it('connects with its module token, sends telemetry, reads, reports and gets its twin, answers methods', async () => {
    const key = await addModule('mod-amqp-1', 'sensor');
    const connected = nextHubEvent(bed.emulator, (e) => e.kind === 'connected' && e.deviceId === 'mod-amqp-1');
    const module = await moduleClient(bed.emulator, {
      hub: HUB_A,
      deviceId: 'mod-amqp-1',
      moduleId: 'sensor',
      key,
      transport: 'amqp',
    });
    await module.open();
    expect(await connected).toMatchObject({ moduleId: 'sensor', transport: 'amqp' });
    expect((await registry.getModule('mod-amqp-1', 'sensor')).responseBody.connectionState).toBe('Connected');

    await module.sendEvent(new Message('over amqp'));
    expect(
      bed.emulator.telemetry(HUB_A, 'mod-amqp-1').map((m) => [m.moduleId, m.body.toString(), m.transport]),
    ).toEqual([['sensor', 'over amqp', 'amqp']]);

    const twin = await module.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ via: 'amqp' }, (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    expect((await registry.getModuleTwin('mod-amqp-1', 'sensor')).responseBody.properties.reported).toMatchObject({
      via: 'amqp',
    });
    const desired = new Promise<unknown>((resolve) =>
      twin.on('properties.desired', (patch: { level?: number }) => {
        if (patch.level === 3) resolve(patch);
      }),
    );
    // The listener asks for desired updates in the background (a PUT on the twin link); the same
    // request through the transport is answered after it (one link, in order), as hub.amqp-device.test does.
    await new Promise<void>((resolve, reject) =>
      (
        module as unknown as { _transport: { enableTwinDesiredPropertiesUpdates(cb: (err?: Error) => void): void } }
      )._transport.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve())),
    );
    await registry.updateModuleTwin('mod-amqp-1', 'sensor', { properties: { desired: { level: 3 } } }, '*');
    expect(await desired).toMatchObject({ level: 3 });

    module.onMethod('ping', (_request, response) => {
      void response?.send(200, 'pong');
    });
    const result = await service.invokeDeviceMethod('mod-amqp-1', 'sensor', {
      methodName: 'ping',
      responseTimeoutInSeconds: 30,
      connectTimeoutInSeconds: 30,
    });
    expect(result.result).toEqual({ status: 200, payload: 'pong' });
    await module.close();

    // Another module's key does not sign for this one: the put-token is refused (401).
    const other = await moduleClient(bed.emulator, {
      hub: HUB_A,
      deviceId: 'mod-amqp-1',
      moduleId: 'missing',
      key,
      transport: 'amqp',
    });
    const refused = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.moduleId === 'missing');
    await expect(other.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
    expect(await refused).toMatchObject({ deviceId: 'mod-amqp-1', reason: 'module-not-found', transport: 'amqp' });
  });
});

describe.each(['mqtt-ws', 'amqp-ws'] as const)('ModuleClient over WebSockets (%s)', (transport) => {
  it('connects to wss://{hub}:443 as its module, sends telemetry, reports to its module twin', async () => {
    const deviceId = `mod-${transport}`;
    const key = await addModule(deviceId, 'ws');
    const module = await moduleClient(bed.emulator, { hub: HUB_A, deviceId, moduleId: 'ws', key, transport });
    const connected = nextHubEvent(bed.emulator, (e) => e.kind === 'connected' && e.deviceId === deviceId);
    await module.open();
    expect(await connected).toMatchObject({ moduleId: 'ws' });
    await module.sendEvent(new Message(transport));
    expect(bed.emulator.telemetry(HUB_A, deviceId).map((m) => [m.moduleId, m.body.toString()])).toEqual([
      ['ws', transport],
    ]);
    const twin = await module.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ transport }, (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    expect((await registry.getModuleTwin(deviceId, 'ws')).responseBody.properties.reported).toMatchObject({
      transport,
    });
    await module.close();
  });
});

describe('ModuleClient with an X.509 certificate (a selfSigned module)', () => {
  it('connects over MQTT and AMQP with its certificate, sends telemetry, reads its twin; another certificate is refused', async () => {
    const deviceId = 'mod-x509-1';
    const own = await createTestDeviceCertificate(`${deviceId}/m`);
    const stranger = await createTestDeviceCertificate(`${deviceId}/m`);
    await registry.create({ deviceId });
    const thumbprint = new X509Certificate(own.cert).fingerprint;
    await registry.addModule({
      deviceId,
      moduleId: 'm',
      authentication: {
        type: 'selfSigned',
        x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint },
      },
    } as Parameters<RegistryClient['addModule']>[0]);
    const connectionString = `HostName=${HUB_A};DeviceId=${deviceId};ModuleId=m;x509=true`;
    for (const [transport, Transport] of [
      ['mqtt', deviceMqtt.Mqtt],
      ['amqp', deviceAmqp.Amqp],
    ] as const) {
      const module = await createDeviceClient(ModuleClient, connectionString, Transport, bed.emulator, { x509: own });
      module.on('error', () => {});
      const connected = nextHubEvent(bed.emulator, (e) => e.kind === 'connected' && e.deviceId === deviceId);
      await module.open();
      try {
        await module.sendEvent(new Message(`over ${transport}`));
        expect(await connected).toMatchObject({ moduleId: 'm', transport });
        expect((await module.getTwin()).properties.desired).toMatchObject({ $version: 1 });
      } finally {
        await module.close();
      }
      // Over AMQP the certificate is checked at the module's first link (no put-token).
      const impostor = await createDeviceClient(ModuleClient, connectionString, Transport, bed.emulator, {
        x509: stranger,
      });
      impostor.on('error', () => {});
      const refused = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.deviceId === deviceId);
      const failed = await impostor
        .open()
        .then(() => impostor.sendEvent(new Message('refused?')))
        .then(
          () => undefined,
          (err: Error) => err,
        );
      expect(failed?.name).toBe('UnauthorizedError');
      expect(await refused).toMatchObject({ moduleId: 'm', transport });
      await impostor.close().catch(() => {});
    }
    expect(bed.emulator.telemetry(HUB_A, deviceId).map((m) => [m.moduleId, m.body.toString()])).toEqual([
      ['m', 'over mqtt'],
      ['m', 'over amqp'],
    ]);
  });
});

describe('ModuleClient over HTTPS', () => {
  it("is refused as IoT Hub refuses it: 401 IotHubUnauthorizedAccess, the module's token on its device's route", async () => {
    const key = await addModule('mod-http-1', 'sensor');
    // azure-iot-device-http sends a module's telemetry to POST /devices/{id}/messages/events with the module's token.
    const module = await moduleClient(bed.emulator, {
      hub: HUB_A,
      deviceId: 'mod-http-1',
      moduleId: 'sensor',
      key,
      transport: 'http',
    });
    await module.open();
    try {
      const refused = nextHubEvent(bed.emulator, (e) => e.kind === 'connect-refused' && e.deviceId === 'mod-http-1');
      const err = (await module.sendEvent(new Message('over https')).then(
        () => undefined,
        (e: unknown) => e,
      )) as { name?: string; response?: { statusCode?: number }; responseBody?: unknown } | undefined;
      expect(err?.name).toBe('UnauthorizedError');
      expect(err?.response?.statusCode).toBe(401);
      // IoT Hub's body for it (azure-iot-sdk-csharp#573: a ModuleClient over HTTP sending an event).
      expect(JSON.parse(String(err?.responseBody))).toMatchObject({
        Message: 'ErrorCode:IotHubUnauthorizedAccess;Unauthorized',
      });
      expect(await refused).toMatchObject({ hub: HUB_A, transport: 'https', reason: 'module-token' });
      const batch = (await module.sendEventBatch([new Message('a'), new Message('b')]).then(
        () => undefined,
        (e: unknown) => e,
      )) as { name?: string } | undefined;
      expect(batch?.name).toBe('UnauthorizedError');
      expect(bed.emulator.telemetry(HUB_A, 'mod-http-1')).toEqual([]);
    } finally {
      await module.close();
    }
  });
});

describe("a module's telemetry on the built-in endpoint", () => {
  it('is read by EventHubConsumerClient with iothub-connection-device-id and -module-id', async () => {
    const key = await addModule('mod-eh-1', 'sensor');
    const module = await moduleClient(bed.emulator, { hub: HUB_A, deviceId: 'mod-eh-1', moduleId: 'sensor', key });
    await module.open();
    const message = new Message('from a module');
    message.properties.add('kind', 'module');
    await module.sendEvent(message);
    await module.close();

    const consumer = new EventHubConsumerClient('$Default', bed.emulator.eventHubConnectionString(HUB_A), {
      ...eventHubConsumerOptions(bed.emulator),
      retryOptions: { maxRetries: 0, timeoutInMs: 30_000 },
    });
    try {
      const event = await new Promise<ReceivedEventData>((resolve, reject) => {
        const subscription = consumer.subscribe(
          String(partitionOf('mod-eh-1')),
          {
            processEvents: async (events) => {
              const mine = events.find((e) => e.systemProperties?.['iothub-connection-device-id'] === 'mod-eh-1');
              if (!mine) return;
              await subscription.close();
              resolve(mine);
            },
            processError: async (err) => {
              await subscription.close();
              reject(err);
            },
          },
          { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
        );
      });
      expect(String(event.body)).toBe('from a module');
      expect(event.properties).toEqual({ kind: 'module' });
      expect(event.systemProperties).toMatchObject({
        'iothub-connection-device-id': 'mod-eh-1',
        'iothub-connection-module-id': 'sensor',
      });
    } finally {
      await consumer.close();
    }
  });
});
