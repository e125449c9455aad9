// Which of the SDKs' transports a class is, by its class name (`Mqtt`, `MqttWs`, `Amqp`, `AmqpWs`,
// `Http`: the names the transport packages export and their classes carry). A user's subclass of
// one is that one: the prototype chain is walked.

export type TransportKind = 'Mqtt' | 'MqttWs' | 'Amqp' | 'AmqpWs' | 'Http';

const KINDS: readonly string[] = ['Mqtt', 'MqttWs', 'Amqp', 'AmqpWs', 'Http'];

/** A transport class as the SDKs' factories take it (`Client.fromConnectionString(cs, Mqtt)`). */
export type TransportClass = abstract new (...args: never[]) => object;

/** The transport `Transport` is, or undefined for a class none of them is (nor extends). */
export function transportKind(Transport: TransportClass): TransportKind | undefined {
  for (let c: unknown = Transport; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    const name = (c as { name?: string }).name;
    if (name && KINDS.includes(name)) return name as TransportKind;
  }
  return undefined;
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
