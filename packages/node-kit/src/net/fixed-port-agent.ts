import type { ClientRequestArgs } from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
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
  FixedPortAgent ??= defineFixedPortAgent();
  return new FixedPortAgent(port, options);
}

type FixedPortAgentClass = new (port: number, options: https.AgentOptions) => https.Agent;
let FixedPortAgent: FixedPortAgentClass | undefined;

/**
 * Defined on first use: node:https loads TLS and X.509 support, and every app imports node-kit, so a
 * top-level import cost every command's start (the allocator host's cold start, `keys derive`) that
 * much even when no WebSocket transport is used (issue #13).
 */
function defineFixedPortAgent(): FixedPortAgentClass {
  const { Agent } = createRequire(import.meta.url)('node:https') as typeof https;
  return class extends Agent {
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
  };
}
