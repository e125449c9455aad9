// The device side of the hubs: azure-iot-device's `Client` (and `ModuleClient`, which has the same
// factories) over each transport, built from the device's connection string as against Azure and
// pointed at the emulator with the SDK's public API only: the connection string's
// `GatewayHostName` (MQTT, AMQP on TLS take a port in it) and `setOptions` (the CA; the WebSocket
// and HTTP transports, which always dial `{hub}:443`, an agent that takes them to the emulator).
import { emulatorAgent } from '../sdk-agent.js';
import { parseConnectionString, requireField, withGatewayHostName } from './connection-string.js';
import { loadPeer } from './peers.js';
import { type EmulatorTarget, requireEndpoint, resolveTarget } from './target.js';
import {
  type DeviceTransportArgument,
  hasMethod,
  type TransportClass,
  transportClassOf,
  transportKind,
} from './transport-kind.js';

/** A device's certificate (PEM, may carry its chain) and private key. */
export interface DeviceX509 {
  cert: string;
  key: string;
  passphrase?: string;
}

/** azure-iot-device's `Client` or `ModuleClient` class (its static factories). */
export interface DeviceClientClass<C> {
  fromConnectionString(connectionString: string, transport: TransportClass): C;
  fromAuthenticationProvider(authenticationProvider: object, transport: TransportClass): C;
}

/** What the helper calls on the client it built (azure-iot-device's public `setOptions`, both forms). */
interface SettableClient {
  setOptions(options: Record<string, unknown>): Promise<unknown>;
  setOptions(options: Record<string, unknown>, done: (err?: Error) => void): void;
}

export interface CreateDeviceClientOptions {
  /**
   * X.509 authentication (the connection string then has `x509=true`, `HostName`, `DeviceId`):
   * the client is built from azure-iot-device's `X509AuthenticationProvider`, which keeps the
   * emulator's `GatewayHostName` (the SDK drops it from `x509=true` connection strings).
   */
  x509?: DeviceX509;
}

interface X509ProviderClass {
  new (credentials: Record<string, unknown>): object;
}

/**
 * `Client.fromConnectionString(connectionString, Transport)` (or `ModuleClient`'s) pointed at the
 * emulator `target`, options set before it resolves (so `open()` may follow at once). With no target
 * (`undefined`: against Azure) it is the SDK's own call, nothing added (with `x509`: the SDK's
 * `X509AuthenticationProvider` for the connection string's hub and device). `Transport` is one of the
 * device transports: `Mqtt`, `MqttWs` (azure-iot-device-mqtt), `Amqp`, `AmqpWs`
 * (azure-iot-device-amqp), `Http` (azure-iot-device-http).
 *
 * ```ts
 * const device = await createDeviceClient(Client, deviceConnectionString, Mqtt, target);
 * await device.open();
 * ```
 *
 * Over `Http`, a later `device.setOptions({ http: … })` replaces the agent this sets (the SDK keeps
 * one `http` option): give it `agent: emulatorAgent(target)` too.
 */
export async function createDeviceClient<C extends SettableClient>(
  Client: DeviceClientClass<C>,
  connectionString: string,
  transport: DeviceTransportArgument,
  target: EmulatorTarget | undefined,
  options: CreateDeviceClientOptions = {},
): Promise<C> {
  const Transport = transportClassOf(transport);
  const kind = transportKind(Transport);
  if (!kind || !hasMethod(Transport, 'sendEvent')) {
    throw new TypeError(
      '@dpskit/emulator/sdk: createDeviceClient takes a device transport class: Mqtt or MqttWs (azure-iot-device-mqtt), Amqp or AmqpWs (azure-iot-device-amqp), Http (azure-iot-device-http)',
    );
  }
  const resolved = target === undefined ? undefined : resolveTarget(target);
  // MQTT and AMQP on TLS dial the gateway; the others always dial {hub}:443 and take an agent.
  const gateway =
    resolved && kind === 'Mqtt'
      ? requireEndpoint(resolved, 'mqtt', 'a device client over Mqtt').provisioningHost
      : resolved && kind === 'Amqp'
        ? requireEndpoint(resolved, 'amqp', 'a device client over Amqp').provisioningHost
        : undefined;
  const client = options.x509
    ? Client.fromAuthenticationProvider(x509Provider(connectionString, options.x509, gateway), Transport)
    : Client.fromConnectionString(
        gateway ? withGatewayHostName(connectionString, gateway) : connectionString,
        Transport,
      );
  if (!resolved) return client;
  const ca = resolved.ca;
  const agent = () => emulatorAgent({ https: requireEndpoint(resolved, 'https', `a device client over ${kind}`), ca });
  switch (kind) {
    case 'Mqtt':
      // setOptions settles asynchronously: an open() before it would connect without the CA.
      await client.setOptions({ ca, ...options.x509 });
      break;
    case 'MqttWs':
      await client.setOptions({ ca, mqtt: { webSocketAgent: agent() }, ...options.x509 });
      break;
    case 'Amqp':
      await client.setOptions({ ca });
      break;
    case 'AmqpWs':
      await client.setOptions({ amqp: { webSocketAgent: agent() } });
      break;
    case 'Http':
      await setHttpOptions(client, { http: { agent: agent() } });
      break;
  }
  return client;
}

/**
 * `client.setOptions(options)` over azure-iot-device-http, which (1.14.4) applies these options
 * within the call but never calls back for them (only for receive-policy options): the promise form
 * would never settle, and left unawaited, a failure would be an unhandled rejection in the user's
 * process instead of this function's error. The callback form throws what the transport throws,
 * which fails this function, as does a callback with an error during the call; once the call has
 * returned the options are in.
 */
function setHttpOptions(client: SettableClient, options: Record<string, unknown>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    client.setOptions(options, (err) => (err ? reject(err) : resolve()));
    resolve();
  });
}

/** azure-iot-device's X509AuthenticationProvider for the connection string's hub and device (and module). */
function x509Provider(connectionString: string, x509: DeviceX509, gatewayHostName: string | undefined): object {
  const fields = parseConnectionString(connectionString);
  const { X509AuthenticationProvider } = loadPeer<{ X509AuthenticationProvider: X509ProviderClass }>(
    'azure-iot-device',
    'createDeviceClient with x509',
  );
  const moduleId = fields.get('ModuleId');
  return new X509AuthenticationProvider({
    host: requireField(fields, 'HostName'),
    deviceId: requireField(fields, 'DeviceId'),
    ...(moduleId ? { moduleId } : {}),
    ...(gatewayHostName ? { gatewayHostName } : {}),
    x509,
  });
}
