// The official, unmodified IoT Hub SDKs (`azure-iothub` Registry and Client, `azure-iot-device`
// Client over MQTT, AMQP and HTTP) pointed at the emulated hubs as users do it: through
// `@dpskit/emulator/sdk` (src/sdk/), with the tests' own defaults (the well-known `iothubowner`
// key, an agent that opens a connection per request unless a test asks to keep them alive).
import type https from 'node:https';
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import type { Emulator } from '../emulator.js';
import { HUB_OWNER_POLICY_NAME, type HubEvent, WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';
import { createDeviceClient, type DeviceTransportArgument, withEmulator } from '../sdk/index.js';
import { emulatorAgent } from '../sdk-agent.js';

const { Client, Message } = deviceSdk;
const { Registry, Client: ServiceClient } = iothub;

export type HubDeviceTransport = 'mqtt' | 'https' | 'amqp' | 'amqp-ws';
export type DeviceClient = InstanceType<typeof Client>;
export type RegistryClient = InstanceType<typeof Registry>;
export type HubServiceClient = InstanceType<typeof ServiceClient>;
export { Message };

/** What the SDK clients need of an emulator: an in-process one, or one started by its CLI (`EmulatorView`). */
export type HubTarget = Pick<Emulator, 'endpoints' | 'caCertPem'>;

/**
 * `emulatorAgent` for requests to `{hub}:443`: the emulator's CA, its HTTPS listener.
 * `keepAlive`: requests reuse one connection (with `--workers`, served by one worker) while it is
 * not idle for 4 minutes, when the HTTPS server closes it (Azure's idle timeout); the next
 * connection may go to any worker. Without it, each request has a connection of its own.
 */
export function hubAgent(emulator: HubTarget, options: { keepAlive?: boolean } = {}): https.Agent {
  return emulatorAgent(emulator, options);
}

const ownerConnectionString = (hub: string) =>
  `HostName=${hub};SharedAccessKeyName=${HUB_OWNER_POLICY_NAME};SharedAccessKey=${WELL_KNOWN_HUB_KEY}`;

/** `Registry.fromConnectionString(emulator.hubConnectionString(hub))` reaching the emulator. */
export function registryClient(emulator: Emulator, hub?: string, connectionString?: string): RegistryClient {
  return withEmulator(Registry.fromConnectionString(connectionString ?? emulator.hubConnectionString(hub)), emulator, {
    agent: hubAgent(emulator),
  });
}

/**
 * `azure-iothub`'s service `Client` for `hub` with the well-known `iothubowner` key (or the
 * connection string given), through `withEmulator`: direct methods over HTTPS (`hubAgent`, or the
 * agent given), `send`/feedback over AMQP.
 */
export function serviceClient(
  emulator: HubTarget,
  hub: string,
  options: { connectionString?: string; agent?: https.Agent } = {},
): HubServiceClient {
  return withEmulator(
    ServiceClient.fromConnectionString(options.connectionString ?? ownerConnectionString(hub)),
    emulator,
    { agent: options.agent ?? hubAgent(emulator) },
  );
}

/** `azure-iothub`'s service `Client` used over AMQP (`Client.send`, the feedback receiver): `serviceClient`. */
export function amqpServiceClient(emulator: HubTarget, hub: string): HubServiceClient {
  return serviceClient(emulator, hub);
}

/** A device created through `registry` with generated keys; resolves with its primary key. */
export async function createDeviceKey(registry: RegistryClient, deviceId: string): Promise<string> {
  const created = (await registry.create({ deviceId })).responseBody;
  return created.authentication?.symmetricKey?.primaryKey as string;
}

/**
 * A Registry of `hub` with the well-known `iothubowner` key whose requests reuse kept-alive
 * connections (`hubAgent`, or the kept-alive `agent` given).
 */
export function keptAliveRegistry(
  emulator: HubTarget,
  hub: string,
  agent: https.Agent = hubAgent(emulator, { keepAlive: true }),
): RegistryClient {
  return withEmulator(Registry.fromConnectionString(ownerConnectionString(hub)), emulator, { agent });
}

/**
 * Reports properties through the SDK twin's `properties.reported.update`: resolves with the error
 * its callback gets (a refused patch), or undefined.
 */
export function reporter(twin: Awaited<ReturnType<DeviceClient['getTwin']>>) {
  return (patch: Record<string, unknown>) =>
    new Promise<Error | undefined>((resolve) =>
      twin.properties.reported.update(patch, (err?: Error | null) => resolve(err ?? undefined)),
    );
}

/** The device's credential: its key, or its certificate (PEM, may carry the chain) and private key. */
export type HubDeviceCredentials = { key: string; x509?: never } | { key?: never; x509: { cert: string; key: string } };

const DEVICE_TRANSPORTS: Record<HubDeviceTransport, DeviceTransportArgument> = {
  mqtt: deviceMqtt.Mqtt,
  https: deviceHttp.Http,
  amqp: deviceAmqp.Amqp,
  'amqp-ws': deviceAmqp.AmqpWs,
};

/**
 * An `azure-iot-device` Client for a device of an emulated hub, built by `createDeviceClient`
 * (options set, not yet opened); its 'error' events are the test's to watch, not uncaught.
 */
export async function deviceClient(
  emulator: HubTarget,
  options: { hub: string; deviceId: string; transport?: HubDeviceTransport } & HubDeviceCredentials,
): Promise<DeviceClient> {
  const connectionString = options.x509
    ? `HostName=${options.hub};DeviceId=${options.deviceId};x509=true`
    : `HostName=${options.hub};DeviceId=${options.deviceId};SharedAccessKey=${options.key}`;
  const client = await createDeviceClient(
    Client,
    connectionString,
    DEVICE_TRANSPORTS[options.transport ?? 'mqtt'],
    emulator,
    options.x509 ? { x509: options.x509 } : {},
  );
  client.on('error', () => {});
  return client;
}

/**
 * Expects `open()` to fail with the SDK's UnauthorizedError *because the hub refused the device*
 * for `reason` (not for a TLS or network failure), as the hub's `connect-refused` event says.
 */
export async function expectRefused(
  emulator: Emulator,
  options: { hub: string; deviceId: string; transport?: HubDeviceTransport } & HubDeviceCredentials,
  reason: string,
): Promise<void> {
  const refused = nextHubEvent(
    emulator,
    (e) =>
      e.kind === 'connect-refused' &&
      e.deviceId === options.deviceId &&
      e.hub.toLowerCase() === options.hub.toLowerCase(),
  );
  const client = await deviceClient(emulator, options);
  // Over HTTP, open() contacts nobody: the first message is what the hub refuses.
  const attempt =
    options.transport === 'https' ? client.open().then(() => client.sendEvent(new Message('refused?'))) : client.open();
  const error = await attempt.then(
    () => {
      throw new Error(`${options.deviceId} connected to ${options.hub}`);
    },
    (err: Error) => err,
  );
  if (error.name !== 'UnauthorizedError') throw error;
  const event = await refused;
  if (event.kind !== 'connect-refused' || event.reason !== reason) {
    throw new Error(`refused for ${JSON.stringify(event)}, expected ${reason}`);
  }
}

/** Resolves with the first hub event that `match` accepts. */
export function nextHubEvent(emulator: Emulator, match: (event: HubEvent) => boolean): Promise<HubEvent> {
  return new Promise((resolve) => {
    const listener = (event: HubEvent) => {
      if (!match(event)) return;
      emulator.off('hub', listener);
      resolve(event);
    };
    emulator.on('hub', listener);
  });
}
