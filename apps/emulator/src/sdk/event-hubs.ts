// The options `@azure/event-hubs`' EventHubConsumerClient needs to read an emulated hub's telemetry
// from its Event Hubs-compatible built-in endpoint (docs/hubs.md). The SDK takes no CA for AMQP
// over TLS (only NODE_EXTRA_CA_CERTS, which Node reads once at start: an emulator started in the
// test has a CA it cannot name), so the client goes over AMQP over WebSockets to the emulator's
// HTTPS listener, with the CA given to the WebSocket. The WebSocket is `ws`, a dependency of
// @dpskit/emulator: the user installs nothing more. The options are public ones of the SDK
// (`customEndpointAddress`, `webSocketOptions`): no private field is touched.
import WebSocket from 'ws';
import { type EmulatorTarget, requireEndpoint, resolveTarget } from './target.js';

/** What a WebSocket the SDK's rhea opens must be (rhea's `WebSocketInstance`), so no SDK type is named. */
export interface EventHubWebSocket {
  send: (...args: never[]) => unknown;
  close: (...args: never[]) => unknown;
  onmessage: ((...args: never[]) => unknown) | null;
  onopen: ((...args: never[]) => unknown) | null;
  onclose: ((...args: never[]) => unknown) | null;
  onerror: ((...args: never[]) => unknown) | null;
}

/** rhea's `WebSocketImpl`: a WebSocket constructor. */
export type EventHubWebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: unknown,
) => EventHubWebSocket;

/** Spread into `new EventHubConsumerClient(consumerGroup, connectionString, { ...here, … })`. */
export interface EventHubConsumerEmulatorOptions {
  /** `https://{host}:{HTTPS port}`: where the SDK opens `wss://…/$servicebus/websocket`. */
  readonly customEndpointAddress?: string;
  readonly webSocketOptions?: {
    readonly webSocket: EventHubWebSocketConstructor;
    readonly webSocketConstructorOptions: { readonly ca: string };
  };
}

/**
 * The EventHubConsumerClient options that take it to `target`'s built-in endpoint; given no target
 * (against Azure), none: `{}`, and the client goes where its connection string says.
 * The connection string is the hub's `emulator.eventHubConnectionString(hub)` (or the ready file's
 * `hubs[].eventHubConnectionString`) here, the hub's built-in endpoint's against Azure.
 */
export function eventHubConsumerOptions(target: EmulatorTarget | undefined): EventHubConsumerEmulatorOptions {
  if (target === undefined) return {};
  const resolved = resolveTarget(target);
  const https = requireEndpoint(resolved, 'https', 'EventHubConsumerClient (AMQP over WebSockets)');
  return {
    customEndpointAddress: `https://${https.provisioningHost}:${https.port}`,
    webSocketOptions: {
      webSocket: WebSocket as unknown as EventHubWebSocketConstructor,
      webSocketConstructorOptions: { ca: resolved.ca },
    },
  };
}
