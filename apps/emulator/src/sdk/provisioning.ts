// The provisioning device transports (azure-iot-provisioning-device-mqtt/-amqp/-http) pointed at
// the emulator with their public API: each takes a transport base in its constructor (the one place
// the CA goes for MQTT and AMQP on TLS, and an agent for HTTP, which always dials port 443), and the
// WebSocket ones an agent. The bases are the transport packages' own dependencies, loaded through
// them (pnpm does not hoist them beside the user's code).
import { emulatorAgent } from '../sdk-agent.js';
import { type BasePackage, loadBaseOf, type PeerPackage } from './peers.js';
import { type EmulatorTarget, type ResolvedTarget, requireEndpoint, resolveTarget } from './target.js';
import { hasMethod, type TransportClass, type TransportKind, transportKind } from './transport-kind.js';

/** DPS's global device endpoint, what `ProvisioningDeviceClient.create` is given against Azure. */
export const GLOBAL_PROVISIONING_HOST = 'global.azure-devices-provisioning.net';

export interface ProvisioningTransport<T> {
  /** The first argument of `ProvisioningDeviceClient.create`. */
  provisioningHost: string;
  /** Its third. */
  transport: T;
}

/** The provisioning transport classes: each takes an optional base in its constructor. */
export type ProvisioningTransportClass<T> = new (base?: never) => T;

interface OptionsBase {
  setOptions(options: Record<string, unknown>): void;
}

interface AmqpBaseClass {
  new (autoSettleMessages: boolean): { connect(config: { sslOptions?: object }, done: unknown): void };
}

const PACKAGE: Record<TransportKind, PeerPackage> = {
  Mqtt: 'azure-iot-provisioning-device-mqtt',
  MqttWs: 'azure-iot-provisioning-device-mqtt',
  Amqp: 'azure-iot-provisioning-device-amqp',
  AmqpWs: 'azure-iot-provisioning-device-amqp',
  Http: 'azure-iot-provisioning-device-http',
};

/**
 * The host and transport to give `ProvisioningDeviceClient.create(provisioningHost, idScope,
 * transport, securityClient)`: `new Transport(…)` pointed at the emulator `target`, and the
 * emulator's host for it. With no target (`undefined`: against Azure): `new Transport()` and
 * `globalHost` (default DPS's `global.azure-devices-provisioning.net`). `Transport` is `Mqtt` or
 * `MqttWs` (azure-iot-provisioning-device-mqtt), `Amqp` or `AmqpWs` (-amqp), `Http` (-http).
 *
 * ```ts
 * const { provisioningHost, transport } = provisioningTransport(Mqtt, target);
 * const result = await ProvisioningDeviceClient.create(provisioningHost, idScope, transport, security).register();
 * ```
 */
// Generic over the class, not its instance: a class chosen at run time (`via === 'mqtt' ? Mqtt :
// Amqp`) is a union, whose instance type InstanceType distributes; inferring T from the union's
// construct signatures picked one member and refused the other (TS2345).
export function provisioningTransport<C extends ProvisioningTransportClass<object>>(
  Transport: C,
  target: EmulatorTarget | undefined,
  globalHost: string = GLOBAL_PROVISIONING_HOST,
): ProvisioningTransport<InstanceType<C>> {
  type T = InstanceType<C>;
  const kind = transportKind(Transport as unknown as TransportClass);
  if (!kind || !hasMethod(Transport as unknown as TransportClass, 'registrationRequest')) {
    throw new TypeError(
      '@dpskit/emulator/sdk: provisioningTransport takes a provisioning transport class: Mqtt or MqttWs (azure-iot-provisioning-device-mqtt), Amqp or AmqpWs (azure-iot-provisioning-device-amqp), Http (azure-iot-provisioning-device-http)',
    );
  }
  const construct = Transport as unknown as new (base?: object) => T;
  if (target === undefined) return { provisioningHost: globalHost, transport: new construct() };
  const resolved = resolveTarget(target);
  const neededFor = `provisioningTransport(${kind})`;
  const base = <B>(name: BasePackage) => loadBaseOf<B>(PACKAGE[kind], name, neededFor);
  switch (kind) {
    case 'Mqtt': {
      const endpoint = requireEndpoint(resolved, 'mqtt', neededFor);
      const mqtt = mqttBase(base, { ca: resolved.ca });
      return { provisioningHost: endpoint.provisioningHost, transport: new construct(mqtt) };
    }
    case 'MqttWs': {
      const endpoint = requireEndpoint(resolved, 'webSockets', neededFor);
      const mqtt = mqttBase(base, { ca: resolved.ca, mqtt: { webSocketAgent: agentFor(resolved, neededFor) } });
      return { provisioningHost: endpoint.provisioningHost, transport: new construct(mqtt) };
    }
    case 'Amqp': {
      const endpoint = requireEndpoint(resolved, 'amqp', neededFor);
      const Amqp = base<{ Amqp: AmqpBaseClass }>('azure-iot-amqp-base').Amqp;
      return {
        provisioningHost: endpoint.provisioningHost,
        transport: new construct(trustingAmqpBase(Amqp, resolved.ca)),
      };
    }
    case 'AmqpWs': {
      const endpoint = requireEndpoint(resolved, 'webSockets', neededFor);
      const transport = new construct();
      // The agent carries the CA and the port; setTransportOptions keeps it when called again
      // with other options (it copies only the ones given).
      (transport as unknown as { setTransportOptions(options: object): void }).setTransportOptions({
        webSocketAgent: agentFor(resolved, neededFor),
      });
      return { provisioningHost: endpoint.provisioningHost, transport };
    }
    case 'Http': {
      const endpoint = requireEndpoint(resolved, 'https', neededFor);
      const Http = base<{ Http: new () => OptionsBase }>('azure-iot-http-base').Http;
      const http = new Http();
      http.setOptions({ http: { agent: agentFor(resolved, neededFor) } });
      return { provisioningHost: endpoint.provisioningHost, transport: new construct(http) };
    }
  }
}

function agentFor(target: ResolvedTarget, neededFor: string) {
  return emulatorAgent({ https: requireEndpoint(target, 'https', neededFor), ca: target.ca });
}

function mqttBase(load: <B>(name: BasePackage) => B, options: Record<string, unknown>): OptionsBase {
  const { MqttBase } = load<{ MqttBase: new () => OptionsBase }>('azure-iot-mqtt-base');
  const base = new MqttBase();
  base.setOptions(options);
  return base;
}

/**
 * An azure-iot-amqp-base `Amqp` whose `connect` (public) adds the CA: the AMQP transport passes no
 * TLS options of its own for symmetric keys (only an X.509 device's certificate and key, kept).
 */
function trustingAmqpBase(Amqp: AmqpBaseClass, ca: string): object {
  const base = new Amqp(true);
  const connect = base.connect.bind(base);
  base.connect = (config, done) => connect({ ...config, sslOptions: { ...config.sslOptions, ca } }, done);
  return base;
}
