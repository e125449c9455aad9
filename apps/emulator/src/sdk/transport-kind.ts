// Which of the SDKs' transports a class is: by its class name (`Mqtt`, `MqttWs`, `Amqp`, `AmqpWs`,
// `Http`: the names the transport packages export and their classes carry; a user's subclass of one
// is that one: the prototype chain is walked), or, where no name says (a bundle minified without
// keeping names: `Mqtt` is `eC` there, method names are kept), by the address the class dials.

export type TransportKind = 'Mqtt' | 'MqttWs' | 'Amqp' | 'AmqpWs' | 'Http';

const KINDS: readonly string[] = ['Mqtt', 'MqttWs', 'Amqp', 'AmqpWs', 'Http'];

/** A transport class as the SDKs' factories take it (`Client.fromConnectionString(cs, Mqtt)`). */
export type TransportClass = abstract new (...args: never[]) => object;

/** The transport `Transport` is, or undefined for a class none of them is (nor extends). */
export function transportKind(Transport: TransportClass): TransportKind | undefined {
  for (const c of classChain(Transport)) {
    const name = (c as { name?: string }).name;
    if (name && KINDS.includes(name)) return name as TransportKind;
  }
  return kindByAddress(Transport);
}

/** `Transport` and the classes it extends, itself first. */
function classChain(Transport: TransportClass): TransportClass[] {
  const chain: TransportClass[] = [];
  for (let c: unknown = Transport; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c))
    chain.push(c as TransportClass);
  return chain;
}

/**
 * The methods in which the SDKs' MQTT and AMQP transports build the address they dial, from the
 * credentials (device) or the registration request (provisioning) alone: azure-iot-device-amqp's
 * and the provisioning transports' `_getConnectionUri` (`amqps://{host}`, `mqtts://{host}`),
 * azure-iot-device-mqtt's `_getBaseTransportConfig` (`.uri`: `mqtts://{host}`); each WebSocket
 * class extends its TLS one and overrides only that method (`wss://{host}:443/$iothub/websocket`).
 * Read from azure-iot-device-mqtt 1.16.4, -amqp 1.14.4, azure-iot-provisioning-device-mqtt 1.8.1,
 * -amqp 1.9.1.
 */
const ADDRESS_METHODS = ['_getConnectionUri', '_getBaseTransportConfig'] as const;

/** What the address methods are given: every field either kind of transport reads for its host. */
const PROBE_HOST = 'transport-kind.invalid';
const PROBE_ARGUMENT = {
  host: PROBE_HOST,
  gatewayHostName: PROBE_HOST,
  provisioningHost: PROBE_HOST,
  deviceId: 'probe',
};

/**
 * The scheme of the address `prototype`'s transport dials (`mqtts`, `amqps`, `wss`), asked of its
 * address method with a made-up host (nothing is dialed; the method is called on a bare object of
 * the class, no constructor run); undefined if it has none or it answers no address.
 */
function dialedScheme(prototype: object): string | undefined {
  const methods = prototype as Record<string, unknown>;
  for (const name of ADDRESS_METHODS) {
    const method = methods[name];
    if (typeof method !== 'function') continue;
    let answer: unknown;
    try {
      answer = method.call(Object.create(prototype), PROBE_ARGUMENT);
    } catch {
      return undefined;
    }
    const uri = typeof answer === 'string' ? answer : (answer as { uri?: unknown } | undefined)?.uri;
    return typeof uri === 'string' ? /^([a-z]+):\/\//.exec(uri)?.[1] : undefined;
  }
  return undefined;
}

/**
 * The transport a class is by what it dials (see ADDRESS_METHODS): `mqtts` Mqtt, `amqps` Amqp; a
 * class that dials `wss` is the WebSocket variant of the first class it extends that dials TLS.
 * Http has no such method: its mark is a method of the HTTP transports alone (the device one's
 * `receive`, its cloud-to-device poll; the provisioning one's `_ensureRestApiClient`). Undefined
 * when none of these says (a class of another kind, or an SDK that changed them: the caller's
 * error names the classes it takes, never a client left dialing Azure).
 */
function kindByAddress(Transport: TransportClass): TransportKind | undefined {
  let webSocket = false;
  for (const c of classChain(Transport)) {
    const scheme = dialedScheme(c.prototype);
    if (scheme === 'wss') webSocket = true;
    else if (scheme === 'mqtts') return webSocket ? 'MqttWs' : 'Mqtt';
    else if (scheme === 'amqps') return webSocket ? 'AmqpWs' : 'Amqp';
    else break;
  }
  if (webSocket) return undefined;
  const isHttp =
    (hasMethod(Transport, 'sendEvent') && hasMethod(Transport, 'receive')) ||
    (hasMethod(Transport, 'registrationRequest') && hasMethod(Transport, '_ensureRestApiClient'));
  return isHttp ? 'Http' : undefined;
}

/** Whether `Transport`'s instances have the method `name` (tells a device transport from a provisioning one). */
export function hasMethod(Transport: TransportClass, name: string): boolean {
  return typeof (Transport.prototype as Record<string, unknown> | undefined)?.[name] === 'function';
}

/**
 * A device transport as TypeScript sees the one it was given: azure-iot-device-http 1.14.4's
 * typings declare its `Http` as a namespace (`export * as Http from './dist/http'`) holding the
 * class, while at run time `require('azure-iot-device-http').Http` is the class itself.
 */
export type DeviceTransportArgument = TransportClass | { readonly Http: TransportClass };

/** The class, whichever of the two shapes above it came in. */
export function transportClassOf(Transport: DeviceTransportArgument): TransportClass {
  return typeof Transport === 'function' ? Transport : Transport.Http;
}
