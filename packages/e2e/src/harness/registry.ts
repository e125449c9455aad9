// The official `azure-iothub` Registry, unmodified, pointed at the emulated hub: the connection
// string the emulator prints (the hub's name, `iothubowner`) and an https.Agent that trusts its
// CA, resolves the hub's name to the emulator and knows its HTTPS port (the SDK always connects to
// `{hub}:443`), given through the SDK's own setOptions.
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Emulator } from '@dpskit/emulator';
import iothub from 'azure-iothub';

const { Client, Registry } = iothub;
export type RegistryClient = InstanceType<typeof Registry>;
export type HubServiceClient = InstanceType<typeof Client>;

const loopback: LookupFunction = (_hostname, options, callback) => {
  if (typeof options === 'object' && options.all) {
    (callback as unknown as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
      { address: '127.0.0.1', family: 4 },
    ]);
    return;
  }
  callback(null, '127.0.0.1', 4);
};

function hubAgent(emulator: Emulator): https.Agent {
  const endpoint = emulator.endpoints.https;
  if (!endpoint) throw new Error('the emulator serves no HTTPS endpoint');
  return Object.assign(new https.Agent({ ca: emulator.caCertPem, lookup: loopback }), {
    defaultPort: endpoint.port,
  });
}

export function emulatorRegistry(emulator: Emulator, hub?: string): RegistryClient {
  const registry = Registry.fromConnectionString(emulator.hubConnectionString(hub));
  (registry as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent: hubAgent(emulator) },
  });
  return registry;
}

/** The official `azure-iothub` Client (direct methods over HTTPS) of an emulated hub, pointed alike. */
export function emulatorHubClient(emulator: Emulator, hub?: string): HubServiceClient {
  const client = Client.fromConnectionString(emulator.hubConnectionString(hub));
  (client as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent: hubAgent(emulator) },
  });
  return client;
}

/** The parts of azure-iothub's Amqp transport `emulatorHubAmqpClient` reaches. */
interface AmqpInternals {
  _config: { host: string };
  _amqp: {
    connect(config: { sslOptions?: Record<string, unknown> } & Record<string, unknown>, done: unknown): void;
  };
}

/**
 * azure-iothub's Client over AMQP (`Client.send`) for an emulated hub, as the emulator README sets it
 * up: `fromConnectionString`, the transport's host pointed at the emulator's AMQP port (the SDK
 * always dials {hub}:5671), and the emulator's CA added to what its AMQP base connects with (a user
 * gives NODE_EXTRA_CA_CERTS, read when Node starts).
 */
export function emulatorHubAmqpClient(emulator: Emulator, hub?: string): HubServiceClient {
  const endpoint = emulator.endpoints.amqp;
  if (!endpoint) throw new Error('the emulator serves no AMQP endpoint');
  const client = Client.fromConnectionString(emulator.hubConnectionString(hub));
  const transport = (client as unknown as { _transport: AmqpInternals })._transport;
  transport._config.host = `localhost:${endpoint.port}`;
  const connect = transport._amqp.connect.bind(transport._amqp);
  transport._amqp.connect = (config, done) =>
    connect({ ...config, sslOptions: { ...config.sslOptions, ca: emulator.caCertPem } }, done);
  return client;
}
