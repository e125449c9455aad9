import { type DeviceIdentity, deviceEtag, type HubDevice, NEVER_UTC } from './identity.js';
import { authenticationView, twinView } from './views.js';

/**
 * A module identity of an emulated hub (azure-docs iot-hub-devguide-identity-registry, "Module
 * identity properties"): a device's component with its own credentials, twin and connection. Kept
 * in the shape of a device's (its keys or thumbprints, generation id, etag counter) plus its module
 * id and `managedBy`, so the device code (authentication, twins) serves both. Modules have no
 * status of their own in IoT Hub's REST `Module`: `status` stays `enabled`.
 */
export interface ModuleIdentity extends DeviceIdentity {
  moduleId: string;
  /** "Identifies who manages this module. For instance, this value is "IoT Edge" if the edge runtime owns this module." */
  managedBy?: string;
}

/** One module of a device of an emulated hub: identity, twin and what the hub observed of it. */
export interface HubModule extends HubDevice {
  identity: ModuleIdentity;
}

/**
 * "Each device identity in IoT Hub can include up to 20 module identities" (azure-docs
 * iot-hub-devguide-module-twins; also iot-hub-devguide-identity-registry and the portal quick
 * starts): the 21st is refused 413 `TooManyModulesOnDevice` (413003, the C# SDK's
 * `TooManyModulesOnDeviceException` for a 413 on a module PUT).
 */
export const MAX_MODULES_PER_DEVICE = 20;

/**
 * IoT Hub's module id rule: "A case-sensitive string (up to 128 characters long) of ASCII 7-bit
 * alphanumeric characters plus certain special characters: `- . + % _ # * ? ! ( ) , : = @ $ '`"
 * (azure-docs iot-hub-devguide-identity-registry). `+` and `#` are left out, as for device ids here:
 * "the device SDKs do not support using the `+` and `#` characters in the deviceId and moduleId"
 * (same page), and both are MQTT wildcards in the module's topics.
 */
export function isValidModuleId(moduleId: string): boolean {
  return /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/.test(moduleId);
}

/**
 * The name a module's connection goes by where a device's goes by its device id (the hubs' MQTT
 * sessions, direct method calls, pushes between workers): `{deviceId}/{moduleId}`, IoT Hub's own MQTT
 * client id for a module. No device id holds a `/`, so it never names a device.
 */
export function moduleKey(deviceId: string, moduleId: string): string {
  return `${deviceId}/${moduleId}`;
}

/** A connection name (`moduleKey` or a device id) split into the device and, for a module, the module. */
export function splitIdentityKey(key: string): { deviceId: string; moduleId?: string } {
  const slash = key.indexOf('/');
  return slash === -1 ? { deviceId: key } : { deviceId: key.slice(0, slash), moduleId: key.slice(slash + 1) };
}

/**
 * Why a cloud-to-device message to a module, or a module's cloud-to-device link, is refused. The
 * emulated hubs queue cloud-to-device messages for devices only: the Node SDK's service `Client`
 * can address none to a module and its `ModuleClient` receives none ("Modules connected to the hub
 * can do D2C, but not C2D", azure-iot-sdk-node#279; "Officially speaking, modules do not support
 * C2D", azure-iot-sdk-node#282), though the C# service SDK can send one (`SendAsync(deviceId,
 * moduleId, message)`, `to: /devices/{id}/modules/{moduleId}/messages/deviceBound`) whose fate IoT
 * Hub does not document. Named so, a user sees the cause rather than a malformed address.
 */
export const MODULE_C2D_REFUSAL =
  'Cloud-to-device messages to modules are not served: the emulated hub queues them for devices only (ModuleClient receives none; a module gets direct methods and desired properties).';

/** Whether a hub record is a module's. */
export function isModule(record: HubDevice): record is HubModule {
  return typeof (record.identity as Partial<ModuleIdentity>).moduleId === 'string';
}

/** The connection name of a device or module record (see `moduleKey`). */
export function identityKey(record: HubDevice): string {
  return isModule(record) ? moduleKey(record.identity.deviceId, record.identity.moduleId) : record.identity.deviceId;
}

/**
 * `GET /devices/{id}/modules/{mid}` as IoT Hub answers it (REST API "Modules - Get Identity",
 * api-version 2021-04-12, in its field order); keys included as the registry gives them to
 * `iothubowner`. `managedBy` null when unset.
 */
export function moduleView(module: HubModule, c2dCount = 0): Record<string, unknown> {
  const { identity } = module;
  return {
    moduleId: identity.moduleId,
    managedBy: identity.managedBy ?? null,
    deviceId: identity.deviceId,
    generationId: identity.generationId,
    etag: deviceEtag(identity),
    connectionState: module.connectionState,
    connectionStateUpdatedTime: module.connectionStateUpdatedUtc ?? NEVER_UTC,
    lastActivityTime: module.lastActivityUtc ?? NEVER_UTC,
    cloudToDeviceMessageCount: c2dCount,
    authentication: authenticationView(identity),
  };
}

/**
 * `GET /twins/{id}/modules/{mid}` as IoT Hub answers it: the device twin's shape (REST `Twin`) with
 * `moduleId` after `deviceId`, `deviceEtag` the module identity's etag; no `capabilities` (IoT Edge is
 * a device's).
 */
export function moduleTwinView(module: HubModule): Record<string, unknown> {
  const { deviceId, capabilities: _edge, ...rest } = twinView(module);
  return { deviceId, moduleId: module.identity.moduleId, ...rest };
}

/**
 * The `managedBy` of a module PUT body: a string (at most 128 characters, the emulator's bound: IoT
 * Hub's is not documented), null or absent (unset). Throws a message naming the field otherwise.
 */
export function readManagedBy(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 128)
    throw new TypeError('managedBy must be a string of at most 128 characters.');
  return value;
}

/** Who a record is, as the hub events name it: the device id, and the module id for a module. */
export function whoOf(record: HubDevice): { deviceId: string; moduleId?: string } {
  return isModule(record)
    ? { deviceId: record.identity.deviceId, moduleId: record.identity.moduleId }
    : { deviceId: record.identity.deviceId };
}
