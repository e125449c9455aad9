// One agent for every official Node SDK client that speaks HTTPS or WebSockets to the emulator.
// Those clients build their URLs themselves: the provisioning HTTP transport, the service SDK,
// `azure-iothub`'s Registry and the device HTTP transport always dial `https://{host}:443`, and the
// WebSocket transports `wss://{host}:443/$iothub/websocket`; a hub's host name
// (`my-hub.azure-devices.net`) does not even resolve on the user's machine. The one connection
// setting each of them lets a caller choose is an https.Agent (`setOptions({ http: { agent } })`,
// `webSocketAgent`). Users wrote that agent by hand from the README, and the obvious version of its
// `lookup` (`cb(null, '127.0.0.1', 4)`) fails on Node 20 with "Invalid IP address: undefined"
// (net asks for `all` addresses): so the emulator ships it.
import type { ClientRequestArgs } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { EmulatorEndpoint } from './emulator.js';

/** An emulator in this process (`createEmulator`), or one started by the CLI (its ready file's `https` and the text of its CA). */
export type EmulatorAgentTarget =
  | { readonly endpoints: { readonly https?: Pick<EmulatorEndpoint, 'host' | 'port'> }; readonly caCertPem: string }
  | { readonly https: Pick<EmulatorEndpoint, 'host' | 'port'>; readonly ca: string | Buffer };

/**
 * An `https.Agent` that takes every request to the emulator's HTTPS listener, whatever host and port
 * its URL names, and trusts the emulator's CA. TLS still checks the server certificate against the
 * URL's host name (the emulator's certificate covers `localhost` and every linked hub), so the SDKs'
 * requests go out unchanged: same URL, same `Host` header, same SAS token. `options` are the usual
 * agent options (`keepAlive`, say); `ca` is set from the target.
 *
 * `@dpskit/emulator/sdk` gives it to each SDK client (`withEmulator`, `provisioningTransport`,
 * `createDeviceClient`); by hand:
 *
 * ```ts
 * const agent = emulatorAgent(emulator);
 * httpBase.setOptions({ http: { agent } });                        // azure-iot-provisioning-device-http
 * mqttBase.setOptions({ ca, mqtt: { webSocketAgent: agent } });    // MqttWs
 * amqpWs.setTransportOptions({ webSocketAgent: agent });           // AmqpWs
 * ```
 */
export function emulatorAgent(target: EmulatorAgentTarget, options: https.AgentOptions = {}): https.Agent {
  const endpoint = 'endpoints' in target ? target.endpoints.https : target.https;
  if (!endpoint) {
    throw new Error('emulatorAgent: the emulator runs without HTTPS (httpsPort false or --no-https)');
  }
  const ca = 'endpoints' in target ? target.caCertPem : target.ca;
  return new EmulatorAgent(connectHost(endpoint.host), endpoint.port, { ...options, ca });
}

/** A wildcard bind (`0.0.0.0`, `::`) is reached on loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

class EmulatorAgent extends https.Agent {
  readonly #host: string;
  readonly #port: number;

  constructor(host: string, port: number, options: https.AgentOptions) {
    super(options);
    this.#host = host;
    this.#port = port;
    // For clients that read the agent's port when their URL names none.
    Object.assign(this, { defaultPort: port });
  }

  // The agent has already set `servername` from the request's host (createSocket), so changing
  // where the socket goes leaves the certificate check on the name the SDK asked for.
  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return super.createConnection({ ...options, host: this.#host, port: this.#port }, callback);
  }
}
