import type { Agent } from 'node:https';
import { fixedPortAgent } from '@dpskit/node-kit';
import type { Amqp } from '../sdk/amqp.js';
import type { Mqtt } from '../sdk/mqtt.js';
import { bracketedHost, type Endpoint } from './endpoint.js';
import { ObservedRequests } from './observed-requests.js';
import type { RegistrationObserver } from './observer.js';
import type { DeviceTransport } from './types.js';

/**
 * The SDKs' WebSocket transports (MqttWs, AmqpWs) dial `wss://<host>:443/$iothub/websocket` whatever
 * they are given; for another port they get an agent that connects there. None over TLS or for 443.
 */
export function webSocketPortAgent(endpoint: Endpoint, ca: string | undefined, webSocket: boolean): Agent | undefined {
  return webSocket && endpoint.port !== undefined && endpoint.port !== 443
    ? fixedPortAgent(endpoint.port, ca === undefined ? {} : { ca })
    : undefined;
}

/**
 * The DeviceTransport of an SDK transport that holds a connection (MQTT, AMQP; TLS or WebSockets):
 * its requests observed and gated, its host as the transport wants it (the host name alone over
 * WebSockets, where the port is the agent's), abort as a disconnect, and the agent released after.
 */
export function connectedDeviceTransport(
  transport: InstanceType<typeof Mqtt> | InstanceType<typeof Amqp>,
  observer: RegistrationObserver,
  endpoint: Endpoint,
  webSocket: boolean,
  agent: Agent | undefined,
): DeviceTransport {
  const requests = new ObservedRequests(transport, observer);
  // With no pending callback the transport emits 'error' (e.g. connection lost while idle); an
  // EventEmitter 'error' without a listener would throw.
  transport.on('error', () => {});
  return {
    sdkTransport: transport,
    sdkHost: webSocket ? bracketedHost(endpoint) : endpoint.hostWithPort,
    abort(): Promise<void> {
      requests.aborted = true;
      return new Promise((resolve) => transport.disconnect(() => resolve()));
    },
    dispose(): void {
      agent?.destroy();
    },
  };
}
