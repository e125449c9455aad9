import type { ClientRequestArgs } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';

/**
 * An `https.Agent` that connects every request to `port`, whatever port its URL names. The Azure IoT
 * SDKs' WebSocket transports (Node `MqttWs`, `AmqpWs`) build `wss://{host}:443/$iothub/websocket`
 * with the port fixed; the one thing they let a caller choose is the WebSocket agent
 * (`AmqpWs.setTransportOptions({ webSocketAgent })`, `MqttBase.setOptions({ mqtt: { webSocketAgent } })`),
 * so this is how they reach a server on another port. `options` are the usual agent options (`ca`).
 * TLS still checks the certificate against the URL's host name.
 */
export function fixedPortAgent(port: number, options: https.AgentOptions = {}): https.Agent {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`fixedPortAgent: port must be an integer from 1 to 65535, not ${port}`);
  }
  return new FixedPortAgent(port, options);
}

class FixedPortAgent extends https.Agent {
  readonly #port: number;

  constructor(port: number, options: https.AgentOptions) {
    super(options);
    this.#port = port;
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return super.createConnection({ ...options, port: this.#port }, callback);
  }
}
