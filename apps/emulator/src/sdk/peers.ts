// The official SDK packages are optional peer dependencies of @dpskit/emulator: nothing of them is
// loaded when `@dpskit/emulator/sdk` is imported, only when a helper needs one, and a missing one is
// an error naming the package to install (not Node's bare "Cannot find module").
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/** The peer packages a helper may load. */
export type PeerPackage =
  | 'azure-iot-device'
  | 'azure-iot-provisioning-device-amqp'
  | 'azure-iot-provisioning-device-http'
  | 'azure-iot-provisioning-device-mqtt';

/** The transport base packages, loaded from the transport package that uses them (pnpm does not hoist them). */
export type BasePackage = 'azure-iot-amqp-base' | 'azure-iot-http-base' | 'azure-iot-mqtt-base';

function isNotFound(err: unknown, name: string): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${name}'`);
}

/**
 * Loads a peer package; `neededFor` names what needs it, for the error when it is not installed.
 * `T` is the part of its exports the caller uses (checked by the caller's use, not here).
 */
export function loadPeer<T>(name: PeerPackage, neededFor: string): T {
  try {
    return requireHere(name) as T;
  } catch (err) {
    if (isNotFound(err, name)) {
      throw new Error(
        `@dpskit/emulator/sdk: ${neededFor} needs the package ${name}, which is not installed where @dpskit/emulator can load it: npm install --save-dev ${name}`,
      );
    }
    throw err;
  }
}

/** Loads `base` as `transport` (a peer) loads it: the copy the transport's own classes were built for. */
export function loadBaseOf<T>(transport: PeerPackage, base: BasePackage, neededFor: string): T {
  let fromTransport: NodeJS.Require;
  try {
    fromTransport = createRequire(requireHere.resolve(transport));
  } catch (err) {
    if (isNotFound(err, transport)) loadPeer(transport, neededFor); // throws the error naming it
    throw err;
  }
  return fromTransport(base) as T;
}
