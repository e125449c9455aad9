// The official, unmodified IoT Hub SDKs (`azure-iothub` Registry, `azure-iot-device` Client over
// MQTT and HTTP) pointed at the emulated hubs with configuration only:
// - the device MQTT client: the connection string's `GatewayHostName=localhost:PORT` (the SDK
//   connects there, its username and token still name the hub) and the CA through `setOptions`;
// - HTTP clients (Registry, the device HTTP transport) always connect to the hub's name on 443: an
//   https.Agent that trusts the CA, resolves every name to the emulator's address and defaults to
//   its port, given through the SDK's own `setOptions({ http: { agent } })`.
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import type { Emulator } from '../emulator.js';
import { HUB_OWNER_POLICY_NAME, type HubEvent, WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';
import { emulatorAgent } from '../sdk-agent.js';

const { Client, Message, X509AuthenticationProvider } = deviceSdk;
const { Registry, Client: ServiceClient } = iothub;

export type HubDeviceTransport = 'mqtt' | 'https' | 'amqp' | 'amqp-ws';
export type DeviceClient = InstanceType<typeof Client>;
export type RegistryClient = InstanceType<typeof Registry>;
export type HubServiceClient = InstanceType<typeof ServiceClient>;
export { Message };

/** Resolves every host name to the loopback address the emulator listens on. */
const loopback: LookupFunction = (_hostname, options, callback) => {
  if (typeof options === 'object' && options.all) {
    (callback as unknown as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
      { address: '127.0.0.1', family: 4 },
    ]);
    return;
  }
  callback(null, '127.0.0.1', 4);
};

/** What the SDK clients need of an emulator: an in-process one, or one started by its CLI (`EmulatorView`). */
export type HubTarget = Pick<Emulator, 'endpoints' | 'caCertPem'>;

/**
 * An agent for SDKs that connect to `{hub}:443`: the emulator's CA, its address, its HTTPS port.
 * `keepAlive`: requests reuse one connection (with `--workers`, served by one worker) while it is
 * not idle for 4 minutes, when the HTTPS server closes it (Azure's idle timeout); the next
 * connection may go to any worker.
 */
export function hubAgent(emulator: HubTarget, options: { keepAlive?: boolean } = {}): https.Agent {
  const endpoint = emulator.endpoints.https;
  if (!endpoint) throw new Error('the emulator runs without HTTPS');
  return Object.assign(new https.Agent({ ca: emulator.caCertPem, lookup: loopback, ...options }), {
    defaultPort: endpoint.port,
  });
}

/** `Registry.fromConnectionString(emulator.hubConnectionString(hub))` reaching the emulator. */
export function registryClient(emulator: Emulator, hub?: string, connectionString?: string): RegistryClient {
  return registryOver(
    Registry.fromConnectionString(connectionString ?? emulator.hubConnectionString(hub)),
    hubAgent(emulator),
  );
}

/**
 * `azure-iothub`'s service `Client` (it invokes direct methods over HTTPS) for `hub` with the
 * well-known `iothubowner` key (or the connection string given), reaching the emulator through its
 * REST client's agent (`hubAgent`, or the one given), as the Registry does. Its AMQP transport is
 * never opened.
 */
export function serviceClient(
  emulator: HubTarget,
  hub: string,
  options: { connectionString?: string; agent?: https.Agent } = {},
): HubServiceClient {
  const client = ServiceClient.fromConnectionString(
    options.connectionString ??
      `HostName=${hub};SharedAccessKeyName=${HUB_OWNER_POLICY_NAME};SharedAccessKey=${WELL_KNOWN_HUB_KEY}`,
  );
  (client as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent: options.agent ?? hubAgent(emulator) },
  });
  return client;
}

/**
 * `azure-iothub`'s service `Client` over AMQP (`Client.send`) for `hub`, set up as the emulator
 * README says: `fromConnectionString` (the well-known `iothubowner` key), its transport's `host`
 * pointed at the emulator's AMQP port (the token it made keeps naming the hub). The CA, which a
 * user trusts with NODE_EXTRA_CA_CERTS (read when Node starts), is added to what its AMQP base
 * connects with.
 */
export function amqpServiceClient(emulator: HubTarget, hub: string): HubServiceClient {
  const endpoint = emulator.endpoints.amqp;
  if (!endpoint) throw new Error('the emulator runs without AMQP');
  const client = ServiceClient.fromConnectionString(
    `HostName=${hub};SharedAccessKeyName=${HUB_OWNER_POLICY_NAME};SharedAccessKey=${WELL_KNOWN_HUB_KEY}`,
  );
  const transport = (client as unknown as { _transport: ServiceAmqpInternals })._transport;
  transport._config.host = `localhost:${endpoint.port}`;
  const connect = transport._amqp.connect.bind(transport._amqp);
  transport._amqp.connect = (config, done) =>
    connect({ ...config, sslOptions: { ...config.sslOptions, ca: emulator.caCertPem } }, done);
  return client;
}

/** The parts of azure-iothub's Amqp transport `amqpServiceClient` reaches. */
interface ServiceAmqpInternals {
  _config: { host: string };
  _amqp: {
    connect(config: { sslOptions?: Record<string, unknown> } & Record<string, unknown>, done: unknown): void;
  };
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
  return registryOver(
    Registry.fromConnectionString(
      `HostName=${hub};SharedAccessKeyName=${HUB_OWNER_POLICY_NAME};SharedAccessKey=${WELL_KNOWN_HUB_KEY}`,
    ),
    agent,
  );
}

function registryOver(registry: RegistryClient, agent: https.Agent): RegistryClient {
  (registry as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent },
  });
  return registry;
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

/** The device connection string the SDK takes, with `GatewayHostName` pointing at the emulator's MQTT port. */
export function deviceConnectionString(emulator: HubTarget, hub: string, deviceId: string, key: string): string {
  return `HostName=${hub};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=${emulator.endpoints.mqtt.provisioningHost}`;
}

/** The device's credential: its key, or its certificate (PEM, may carry the chain) and private key. */
export type HubDeviceCredentials = { key: string; x509?: never } | { key?: never; x509: { cert: string; key: string } };

/** An `azure-iot-device` Client for a device of an emulated hub, options set (not yet opened). */
export async function deviceClient(
  emulator: HubTarget,
  options: { hub: string; deviceId: string; transport?: HubDeviceTransport } & HubDeviceCredentials,
): Promise<DeviceClient> {
  const kind = options.transport ?? 'mqtt';
  if (kind === 'amqp' || kind === 'amqp-ws') return amqpDeviceClient(emulator, { ...options, transport: kind });
  const mqtt = kind === 'mqtt';
  const transport = mqtt ? deviceMqtt.Mqtt : deviceHttp.Http;
  const client = options.x509
    ? // `x509=true` connection strings lose `GatewayHostName` (device_client.js builds their
      // X509AuthenticationProvider from HostName and DeviceId only): the SDK's own provider takes it.
      Client.fromAuthenticationProvider(
        new X509AuthenticationProvider({
          host: options.hub,
          deviceId: options.deviceId,
          gatewayHostName: emulator.endpoints.mqtt.provisioningHost,
          x509: options.x509,
        }),
        transport,
      )
    : Client.fromConnectionString(
        deviceConnectionString(emulator, options.hub, options.deviceId, options.key),
        transport,
      );
  client.on('error', () => {});
  if (mqtt) {
    // setOptions settles asynchronously: an open() before it would connect without the CA.
    await client.setOptions({ ca: emulator.caCertPem, ...(options.x509 ?? {}) });
  } else {
    // The HTTP transport applies options at once but never calls back for these (an SDK bug):
    // its promise would never settle.
    void client.setOptions({ http: { agent: hubAgent(emulator) } } as never);
  }
  return client;
}

/**
 * A device Client over `azure-iot-device-amqp`: `Amqp` with `GatewayHostName=localhost:<amqp port>`
 * (azure-iot-amqp-base takes the port from it) and the CA through `setOptions`; `AmqpWs`, which
 * always dials `wss://{host}:443/$iothub/websocket`, with the hub's name and `emulatorAgent` as
 * its `webSocketAgent` (CA and port).
 */
async function amqpDeviceClient(
  emulator: HubTarget,
  options: { hub: string; deviceId: string; transport: 'amqp' | 'amqp-ws' } & HubDeviceCredentials,
): Promise<DeviceClient> {
  const amqp = emulator.endpoints.amqp;
  if (!amqp) throw new Error('the emulator runs without AMQP');
  const ws = options.transport === 'amqp-ws';
  const transport = ws ? deviceAmqp.AmqpWs : deviceAmqp.Amqp;
  const client = options.x509
    ? Client.fromAuthenticationProvider(
        new X509AuthenticationProvider({
          host: options.hub,
          deviceId: options.deviceId,
          ...(ws ? {} : { gatewayHostName: amqp.provisioningHost }),
          x509: options.x509,
        }),
        transport,
      )
    : Client.fromConnectionString(
        `HostName=${options.hub};DeviceId=${options.deviceId};SharedAccessKey=${options.key}${ws ? '' : `;GatewayHostName=${amqp.provisioningHost}`}`,
        transport,
      );
  client.on('error', () => {});
  await client.setOptions(ws ? { amqp: { webSocketAgent: emulatorAgent(emulator) } } : { ca: emulator.caCertPem });
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
