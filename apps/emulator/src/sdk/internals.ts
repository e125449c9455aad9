// Every private field of the official SDKs that @dpskit/emulator/sdk reaches, in this one file.
// The SDKs offer no public way in for these (checked in the versions named): their service clients
// build their REST client and AMQP connection themselves and dial `{HostName}:443` / `:5671`.
// Each field was read from the SDK version named beside it; an SDK that renames or drops one makes
// the helper throw, naming the field (never a silent fallback: the client would then reach Azure,
// or hang on a name that does not resolve). internals.test.ts checks each against the installed SDKs.
import type { Agent } from 'node:https';

const ISSUES = 'https://github.com/dpskit/dpskit/issues';

function changed(client: string, field: string, readFrom: string): Error {
  return new Error(
    `@dpskit/emulator/sdk: this ${client} has no ${field} (read from ${readFrom}), so it cannot be pointed at the emulator: ` +
      `the SDK changed its internals. Pin the SDK version named, and report it at ${ISSUES} with the version you have.`,
  );
}

/** The part of azure-iot-http-base's RestApiClient the helper calls (`setOptions` is public on it). */
export interface RestApiClientLike {
  setOptions(options: { http: { agent: Agent } }): void;
}

/**
 * `_restApiClient`: the azure-iot-http-base RestApiClient of
 * - `ProvisioningServiceClient`, azure-iot-provisioning-service 1.11.2 (dist/provisioningserviceclient.js constructor),
 * - `Registry` and `Client`, azure-iothub 1.16.6 (dist/registry.js, dist/client.js constructors; both set it a
 *   keep-alive `https.Agent` there).
 * Its `setOptions({ http: { agent } })` is how every request of the client gets an agent.
 */
export function restApiClientOf(client: object, clientName: string, readFrom: string): RestApiClientLike {
  const rest = (client as { _restApiClient?: Partial<RestApiClientLike> })._restApiClient;
  if (typeof rest?.setOptions !== 'function') throw changed(clientName, '_restApiClient.setOptions', readFrom);
  return rest as RestApiClientLike;
}

/** What azure-iothub's AMQP transport hands its AMQP base's `connect` (common-amqp/amqp.js `connect(config, done)`). */
export interface AmqpConnectConfig {
  uri: string;
  sslOptions?: Record<string, unknown>;
  [other: string]: unknown;
}

/** The AMQP base of azure-iothub's service transport; `connect` is its public method, reached through `_amqp`. */
export interface AmqpBaseLike {
  connect(config: AmqpConnectConfig, done: (...args: unknown[]) => void): void;
}

/**
 * `_transport._amqp`: azure-iothub 1.16.6's `Client` keeps its transport (`Amqp`, or `AmqpWs` which
 * extends it; dist/client.js constructor) in `_transport`, and the transport its AMQP base (its own
 * copy of azure-iot-amqp-base, dist/common-amqp/amqp.js) in `_amqp` (dist/amqp.js constructor). The
 * transport connects with `_amqp.connect({ uri: 'amqps://{HostName}' or 'wss://{HostName}:443/$iothub/websocket', … })`
 * and no TLS options, so the base's `connect` is where the emulator's address and CA go in.
 */
export function serviceAmqpBaseOf(client: object): AmqpBaseLike {
  const transport = (client as { _transport?: { _amqp?: Partial<AmqpBaseLike> } })._transport;
  const base = transport?._amqp;
  if (typeof base?.connect !== 'function')
    throw changed('azure-iothub Client', '_transport._amqp.connect', 'azure-iothub 1.16.6');
  return base as AmqpBaseLike;
}
