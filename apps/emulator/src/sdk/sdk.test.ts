// @dpskit/emulator/sdk as a user's test code uses it: the official, unmodified SDK clients built as
// against Azure (`fromConnectionString`, `new Mqtt()`…), each pointed at one emulator on free ports
// by one call, over every transport they have: enrollments (ProvisioningServiceClient), provisioning
// (Mqtt, MqttWs, Amqp, AmqpWs, Http), the hub registry (Registry), devices (Client over each
// transport), direct methods and cloud-to-device messages with feedback (azure-iothub Client),
// telemetry read back from the built-in endpoint (@azure/event-hubs EventHubConsumerClient), an
// emulator known only by its ready file, emulatorAgent by hand; and, given no target, nothing changed.
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import httpBase from 'azure-iot-http-base';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningAmqp from 'azure-iot-provisioning-device-amqp';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningService from 'azure-iot-provisioning-service';
import symmetricKey from 'azure-iot-security-symmetric-key';
import iothub from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readyDetails } from '../cli/run.js';
import { createEmulator, type Emulator } from '../emulator.js';
import { keepForFailure } from '../testing/failure-log.js';
import { tempStateDir } from '../testing/fixtures.js';
import {
  createDeviceClient,
  type DeviceTransportArgument,
  emulatorAgent,
  eventHubConsumerOptions,
  GLOBAL_PROVISIONING_HOST,
  type ProvisioningTransportClass,
  provisioningTransport,
  readyFileTarget,
  withEmulator,
} from './index.js';

const { Client: DeviceClient, Message } = deviceSdk;
const { ProvisioningDeviceClient } = provisioningDevice;
const { Registry, Client: ServiceClient } = iothub;
const HUB = 'sdk-hub.azure-devices.net';
const GROUP_KEY = Buffer.alloc(32, 5).toString('base64');
const deviceKey = (id: string) => createHmac('sha256', Buffer.from(GROUP_KEY, 'base64')).update(id).digest('base64');
const deviceConnectionString = (id: string) => `HostName=${HUB};DeviceId=${id};SharedAccessKey=${deviceKey(id)}`;

const state = tempStateDir();
let emulator: Emulator;
beforeAll(async () => {
  emulator = createEmulator({
    config: { idScope: '0ne000SDK17', iotHubs: [{ hostName: HUB }] },
    stateDir: state.path,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    webView: false,
    retryAfterSeconds: 0,
    logLevel: 'debug',
    log: keepForFailure,
  });
  await emulator.start();
  const service = withEmulator(
    provisioningService.ProvisioningServiceClient.fromConnectionString(emulator.serviceConnectionString as string),
    emulator,
  );
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'sdk-group',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY, secondaryKey: GROUP_KEY } },
  } as never);
});
afterAll(async () => {
  await emulator?.stop();
  state.remove();
});

function register(registrationId: string, provisioning: { provisioningHost: string; transport: object }) {
  return ProvisioningDeviceClient.create(
    provisioning.provisioningHost,
    emulator.idScope,
    provisioning.transport as never,
    new symmetricKey.SymmetricKeySecurityClient(registrationId, deviceKey(registrationId)) as never,
  ).register();
}

describe('withEmulator: the service clients', () => {
  it('ProvisioningServiceClient reads back the enrollment group it wrote', async () => {
    const service = withEmulator(
      provisioningService.ProvisioningServiceClient.fromConnectionString(emulator.serviceConnectionString as string),
      emulator,
    );
    expect((await service.getEnrollmentGroup('sdk-group')).responseBody.enrollmentGroupId).toBe('sdk-group');
  });

  it('Registry reads the twin of a device provisioned through the emulator', async () => {
    await register('sdk-registry', provisioningTransport(provisioningHttp.Http, emulator));
    const registry = withEmulator(Registry.fromConnectionString(emulator.hubConnectionString(HUB)), emulator);
    expect((await registry.getTwin('sdk-registry')).responseBody.deviceId).toBe('sdk-registry');
  });
});

describe('provisioningTransport: each provisioning transport', () => {
  const transports: Record<string, ProvisioningTransportClass<object>> = {
    Mqtt: provisioningMqtt.Mqtt,
    MqttWs: provisioningMqtt.MqttWs,
    Amqp: provisioningAmqp.Amqp,
    AmqpWs: provisioningAmqp.AmqpWs,
    Http: provisioningHttp.Http,
  };
  it.each(Object.entries(transports))('registers over %s', async (name, Transport) => {
    const id = `sdk-provision-${name.toLowerCase()}`;
    await expect(register(id, provisioningTransport(Transport, emulator))).resolves.toMatchObject({
      assignedHub: HUB,
      deviceId: id,
    });
  });

  it("takes an emulator in another process by its ready file (endpoints, the CA's path)", async () => {
    const file = join(state.path, 'ready.json');
    writeFileSync(file, JSON.stringify({ ready: true, pid: process.pid, ...readyDetails(emulator) }));
    const target = readyFileTarget(file);
    await expect(
      register('sdk-ready-file', provisioningTransport(provisioningAmqp.Amqp, target)),
    ).resolves.toMatchObject({ assignedHub: HUB });
  });
});

describe('createDeviceClient: the hub device client over each transport', () => {
  const transports: Record<string, DeviceTransportArgument> = {
    Mqtt: deviceMqtt.Mqtt,
    MqttWs: deviceMqtt.MqttWs,
    Amqp: deviceAmqp.Amqp,
    AmqpWs: deviceAmqp.AmqpWs,
    Http: deviceHttp.Http,
  };
  it.each(Object.entries(transports))('sends telemetry over %s', async (name, Transport) => {
    const id = `sdk-device-${name.toLowerCase()}`;
    await register(id, provisioningTransport(provisioningMqtt.Mqtt, emulator));
    const device = await createDeviceClient(DeviceClient, deviceConnectionString(id), Transport, emulator);
    try {
      await device.open();
      await device.sendEvent(new Message(`hello over ${name}`));
      expect(emulator.telemetry(HUB, id).map((m) => m.body.toString())).toEqual([`hello over ${name}`]);
    } finally {
      await device.close();
    }
  });
});

describe('eventHubConsumerOptions: @azure/event-hubs EventHubConsumerClient', () => {
  it("reads a device's telemetry back from the hub's built-in endpoint", async () => {
    const id = 'sdk-event-hubs';
    await register(id, provisioningTransport(provisioningMqtt.Mqtt, emulator));
    const device = await createDeviceClient(DeviceClient, deviceConnectionString(id), deviceMqtt.Mqtt, emulator);
    const consumer = new EventHubConsumerClient(
      '$Default',
      emulator.eventHubConnectionString(HUB),
      eventHubConsumerOptions(emulator),
    );
    try {
      await device.open();
      await device.sendEvent(new Message('read me back'));
      const event = await new Promise<ReceivedEventData>((resolve, reject) => {
        const subscription = consumer.subscribe(
          {
            processEvents: async (events) => {
              const mine = events.find((e) => e.systemProperties?.['iothub-connection-device-id'] === id);
              if (mine) void subscription.close().then(() => resolve(mine), reject);
            },
            processError: async (err) => reject(err),
          },
          { startPosition: earliestEventPosition },
        );
      });
      expect(Buffer.from(event.body as Uint8Array).toString()).toBe('read me back');
    } finally {
      await consumer.close();
      await device.close();
    }
  });

  it('takes an emulator in another process by its ready file', async () => {
    const file = join(state.path, 'ready-event-hubs.json');
    writeFileSync(file, JSON.stringify({ ready: true, pid: process.pid, ...readyDetails(emulator) }));
    const consumer = new EventHubConsumerClient(
      '$Default',
      emulator.eventHubConnectionString(HUB),
      eventHubConsumerOptions(readyFileTarget(file)),
    );
    try {
      expect(await consumer.getPartitionIds()).toEqual(['0', '1', '2', '3']);
    } finally {
      await consumer.close();
    }
  });
});

describe('withEmulator: azure-iothub Client', () => {
  it('invokes a direct method (REST) and sends a cloud-to-device message with feedback (AMQP)', async () => {
    const id = 'sdk-service-client';
    await register(id, provisioningTransport(provisioningMqtt.Mqtt, emulator));
    const device = await createDeviceClient(DeviceClient, deviceConnectionString(id), deviceMqtt.Mqtt, emulator);
    const service = withEmulator(ServiceClient.fromConnectionString(emulator.hubConnectionString(HUB)), emulator);
    try {
      await device.open();
      device.onDeviceMethod('ping', (request, response) => response.send(200, { pong: request.payload }));
      const received = new Promise<string>((resolve) =>
        device.on('message', (message) => {
          device.complete(message, () => resolve(message.data.toString()));
        }),
      );
      const { result } = await service.invokeDeviceMethod(id, { methodName: 'ping', payload: 7 });
      expect(result).toMatchObject({ status: 200, payload: { pong: 7 } });

      await service.open();
      const { result: receiver } = (await service.getFeedbackReceiver()) as unknown as {
        result: {
          on(event: 'message', listener: (m: InstanceType<typeof Message>) => void): void;
          complete(m: unknown, done: () => void): void;
        };
      };
      const feedback = new Promise<unknown[]>((resolve) =>
        receiver.on('message', (message) => {
          receiver.complete(message, () => {});
          resolve(JSON.parse(message.data.toString()) as unknown[]);
        }),
      );
      const message = new Message('to the device');
      message.messageId = 'sdk-c2d';
      message.ack = 'full';
      await service.send(id, message);
      expect(await received).toBe('to the device');
      expect(await feedback).toEqual([expect.objectContaining({ originalMessageId: 'sdk-c2d', deviceId: id })]);
    } finally {
      await service.close();
      await device.close();
    }
  });

  it('sends over AmqpWs (wss://{hub}:443 taken to the HTTPS listener)', async () => {
    const id = 'sdk-service-amqp-ws';
    await register(id, provisioningTransport(provisioningMqtt.Mqtt, emulator));
    const service = withEmulator(
      ServiceClient.fromConnectionString(emulator.hubConnectionString(HUB), iothub.AmqpWs),
      emulator,
    );
    try {
      const message = new Message('over websockets');
      message.messageId = 'sdk-c2d-ws';
      await service.send(id, message);
      expect(emulator.cloudToDeviceQueue(id, HUB).map((m) => m.messageId)).toEqual(['sdk-c2d-ws']);
    } finally {
      await service.close();
    }
  });
});

describe('emulatorAgent by hand, the agent underneath (for a client the helpers do not name)', () => {
  it("given to azure-iot-http-base's Http, from a ready file's https (a wildcard bind) and the CA's text", async () => {
    const https = emulator.endpoints.https;
    if (!https) throw new Error('the emulator serves HTTPS');
    const base = new httpBase.Http();
    base.setOptions({
      http: { agent: emulatorAgent({ https: { host: '0.0.0.0', port: https.port }, ca: emulator.caCertPem }) },
    });
    const pointed = { provisioningHost: 'localhost', transport: new provisioningHttp.Http(base) };
    await expect(register('sdk-agent-by-hand', pointed)).resolves.toMatchObject({ assignedHub: HUB });
  });

  it('says so when the emulator has no HTTPS listener', () => {
    expect(() => emulatorAgent({ endpoints: {}, caCertPem: emulator.caCertPem })).toThrow(
      'emulatorAgent: the emulator runs without HTTPS (httpsPort false or --no-https)',
    );
  });
});

describe('given no target (against Azure), each helper leaves the client as the SDK built it', () => {
  it('withEmulator returns the client with its own agent and transport', () => {
    const client = ServiceClient.fromConnectionString(emulator.hubConnectionString(HUB));
    const internals = client as unknown as {
      _restApiClient: { _http: { _options: unknown } };
      _transport: { _amqp: { connect: unknown } };
    };
    const options = internals._restApiClient._http._options;
    const connect = internals._transport._amqp.connect;
    expect(withEmulator(client, undefined)).toBe(client);
    expect(internals._restApiClient._http._options).toBe(options);
    expect(internals._transport._amqp.connect).toBe(connect);
  });

  it("provisioningTransport gives DPS's global host and a transport built with no base", () => {
    const { provisioningHost, transport } = provisioningTransport(provisioningMqtt.Mqtt, undefined);
    expect(provisioningHost).toBe(GLOBAL_PROVISIONING_HOST);
    expect(provisioningHost).toBe('global.azure-devices-provisioning.net');
    expect(transport).toBeInstanceOf(provisioningMqtt.Mqtt);
    expect((transport as unknown as { _mqttBase: { _options?: unknown } })._mqttBase._options).toBeUndefined();
    expect(provisioningTransport(provisioningHttp.Http, undefined, 'my-dps.example').provisioningHost).toBe(
      'my-dps.example',
    );
  });

  it('provisioningTransport takes a transport chosen at run time (a union of classes)', () => {
    // A suite that picks its transport by configuration: the union must type-check (tsc is this
    // test's first half: TS2345 when the result's type came from one member of the union).
    for (const Transport of [provisioningMqtt.Mqtt, provisioningAmqp.Amqp] as const) {
      const { transport } = provisioningTransport(Transport, undefined);
      const typed: InstanceType<typeof provisioningMqtt.Mqtt> | InstanceType<typeof provisioningAmqp.Amqp> = transport;
      expect(typed).toBeInstanceOf(Transport);
    }
  });

  it('eventHubConsumerOptions gives no option: the connection string decides', () => {
    expect(eventHubConsumerOptions(undefined)).toEqual({});
  });

  it('createDeviceClient is fromConnectionString: no gateway, no options', async () => {
    const device = await createDeviceClient(
      DeviceClient,
      deviceConnectionString('azure-device'),
      deviceMqtt.Mqtt,
      undefined,
    );
    const transport = (
      device as unknown as {
        _transport: {
          _authenticationProvider: { getDeviceCredentials(): Promise<Record<string, unknown>> };
          _mqtt: { _options?: unknown };
        };
      }
    )._transport;
    const credentials = await transport._authenticationProvider.getDeviceCredentials();
    expect(credentials).toMatchObject({ host: HUB, deviceId: 'azure-device' });
    expect(credentials.gatewayHostName).toBeUndefined();
    expect(transport._mqtt._options).toBeUndefined();
  });
});

describe('refusals name the cause', () => {
  const noAmqp = () => {
    const { mqtt, https } = emulator.endpoints;
    return { mqtt, https, amqp: null, webSockets: null, ca: emulator.caCertPem };
  };

  it('a client of the wrong kind', async () => {
    expect(() => withEmulator({} as never, emulator)).toThrow(
      'withEmulator takes a ProvisioningServiceClient (azure-iot-provisioning-service) or a Registry or Client (azure-iothub)',
    );
    expect(() => provisioningTransport(deviceMqtt.Mqtt as never, emulator)).toThrow(
      'provisioningTransport takes a provisioning transport class',
    );
    await expect(
      createDeviceClient(DeviceClient, deviceConnectionString('x'), provisioningMqtt.Mqtt, emulator),
    ).rejects.toThrow('createDeviceClient takes a device transport class');
  });

  it('a listener the emulator runs without', async () => {
    const { mqtt, amqp } = emulator.endpoints;
    expect(() => eventHubConsumerOptions({ mqtt, amqp, https: null, ca: emulator.caCertPem })).toThrow(
      '@dpskit/emulator/sdk: EventHubConsumerClient (AMQP over WebSockets) needs https: the emulator runs without HTTPS',
    );
    expect(() => provisioningTransport(provisioningAmqp.Amqp, noAmqp())).toThrow(
      '@dpskit/emulator/sdk: provisioningTransport(Amqp) needs amqp: the emulator runs without AMQP (amqpPort false or --no-amqp)',
    );
    await expect(
      createDeviceClient(DeviceClient, deviceConnectionString('x'), deviceAmqp.Amqp, noAmqp()),
    ).rejects.toThrow('a device client over Amqp needs amqp');
    // The hub Client is pointed at once (its REST calls work); its AMQP connection fails naming the cause.
    const service = withEmulator(ServiceClient.fromConnectionString(emulator.hubConnectionString(HUB)), noAmqp());
    // (The SDK wraps it, as any connection error, keeping it as amqpError; it does not retry it.)
    const error = (await service.open().catch((err: unknown) => err)) as { amqpError?: Error };
    expect(error.amqpError?.message).toMatch(/azure-iothub Client \(send, getFeedbackReceiver over AMQP\) needs amqp/);
  });

  it('x509 needs HostName and DeviceId in the connection string, and names neither key nor string', async () => {
    const error = await createDeviceClient(
      DeviceClient,
      'HostName=h;SharedAccessKey=c2VjcmV0',
      deviceMqtt.Mqtt,
      emulator,
      {
        x509: { cert: 'c', key: 'k' },
      },
    ).catch((err: Error) => err);
    expect((error as Error).message).toBe('@dpskit/emulator/sdk: the connection string has no DeviceId');
  });
});
