// The device SDK's hub transports (azure-iot-device-mqtt, -amqp, -http; over TLS or WebSockets) and
// how each reaches a hub at another address than the hub's own name (the local emulator, a gateway).
import dns from 'node:dns';
import type https from 'node:https';
import { fixedPortAgent } from '@dpskit/node-kit';
import { InvalidOptionError } from './errors.js';
import type { TransportName } from './types.js';

/** The transports a device reaches its hub with: the same names as DPS's (`--hub-transport`). */
export type HubTransportName = TransportName;

/**
 * What a hub transport can do beyond telemetry and cloud-to-device messages: IoT Hub's HTTPS device
 * API has no twin, no desired-property pushes and no direct methods (azure-docs
 * iot-hub-devguide-protocols: "HTTPS … no cloud-to-device push": C2D by polling only).
 */
export function hubTransportHasTwin(transport: HubTransportName): boolean {
  return transport !== 'http';
}

/** An SDK transport class as `Client.fromConnectionString` takes it. */
// biome-ignore lint/suspicious/noExplicitAny: the SDK's transport constructors differ per package
export type SdkTransportClass = new (...args: any[]) => any;

export interface HubTransportSetup {
  transportClass: SdkTransportClass;
  /** The connection string's `GatewayHostName` (the SDK dials it; the token still names the hub). */
  gatewayHost?: string;
  /** For `client.setOptions` (the CA, a WebSocket or HTTPS agent). */
  options?: Record<string, unknown>;
  /** azure-iot-device-http applies its options at once and never calls back: not awaited. */
  awaitOptions: boolean;
  /** The agent made here (closed with the session). */
  agent?: https.Agent;
}

/**
 * The SDK transport for `transport` (its package loaded on first use: a device that never uses
 * AMQP loads no rhea) and how it reaches `gatewayHost` (`host[:port]`; undefined: the hub itself):
 * MQTT and AMQP over TLS take the gateway with its port; the WebSocket transports always dial
 * `wss://{host}:443/$iothub/websocket`, so they get the host name and an agent fixed to the port;
 * the HTTP transport always requests `https://{hub}/…` (the hub's own name, never the gateway), so
 * it gets an agent that resolves every name to the gateway's host and connects to its port (TLS
 * still checks the hub's name, which the emulator's certificate holds).
 */
export async function hubTransportSetup(
  transport: HubTransportName,
  gatewayHost: string | undefined,
  ca: string | undefined,
): Promise<HubTransportSetup> {
  const gateway = gatewayHost === undefined ? undefined : splitHost(gatewayHost);
  const caOptions = ca === undefined ? {} : { ca };
  switch (transport) {
    case 'mqtt':
    case 'mqtt-ws': {
      const { Mqtt, MqttWs } = (await import('azure-iot-device-mqtt')).default;
      return transport === 'mqtt'
        ? { transportClass: Mqtt, ...gatewayOf(gatewayHost), options: caOptions, awaitOptions: true }
        : webSocketSetup(MqttWs, 'mqtt', gateway, caOptions);
    }
    case 'amqp':
    case 'amqp-ws': {
      const { Amqp, AmqpWs } = (await import('azure-iot-device-amqp')).default;
      return transport === 'amqp'
        ? { transportClass: Amqp, ...gatewayOf(gatewayHost), options: caOptions, awaitOptions: true }
        : webSocketSetup(AmqpWs, 'amqp', gateway, caOptions);
    }
    case 'http': {
      // The package's typings declare Http as a namespace (`export * as Http`); it is the class.
      const Http = (await import('azure-iot-device-http')).default.Http as unknown as SdkTransportClass;
      if (!gateway)
        return { transportClass: Http, ...(ca === undefined ? {} : { options: { ca } }), awaitOptions: false };
      const agent = fixedPortAgent(gateway.port, {
        ...caOptions,
        keepAlive: true,
        lookup: ((_hostname: string, options: dns.LookupOptions, callback: never) =>
          dns.lookup(gateway.hostname.replace(/^\[(.*)\]$/, '$1'), options, callback)) as never,
      });
      return { transportClass: Http, options: { http: { agent } }, awaitOptions: false, agent };
    }
  }
}

/**
 * A WebSocket transport (`MqttWs`, `AmqpWs`: `wss://{host}:443/…` whatever they are given): the
 * gateway's host name, and for another port than 443 an agent fixed to it (`{mqtt|amqp}.webSocketAgent`).
 */
function webSocketSetup(
  transportClass: SdkTransportClass,
  optionsKey: 'mqtt' | 'amqp',
  gateway: { hostname: string; port: number } | undefined,
  caOptions: { ca?: string },
): HubTransportSetup {
  const agent = gateway && gateway.port !== 443 ? fixedPortAgent(gateway.port, caOptions) : undefined;
  return {
    transportClass,
    ...gatewayOf(gateway?.hostname),
    options: { ...caOptions, ...(agent ? { [optionsKey]: { webSocketAgent: agent } } : {}) },
    awaitOptions: true,
    ...(agent ? { agent } : {}),
  };
}

function gatewayOf(host: string | undefined): { gatewayHost?: string } {
  return host === undefined ? {} : { gatewayHost: host };
}

/** `host[:port]` (IPv6 in brackets) as its host name (brackets kept) and port (443 when none). */
function splitHost(host: string): { hostname: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!match?.[1]) throw new InvalidOptionError('hubHost', `"${host}" is not host[:port]`);
  return { hostname: match[1], port: match[2] === undefined ? 443 : Number(match[2]) };
}
