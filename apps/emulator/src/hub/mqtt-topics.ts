/**
 * IoT Hub's device-side MQTT topic grammar as the device SDKs speak it (pure; no broker). Source:
 * azure-docs iot-hub-mqtt-support, azure-iot-sdk-node device/transport/mqtt.
 */

import { MAX_REQUEST_ID_LENGTH } from '../transport/mqtt-topics.js';
import { splitIdentityKey } from './core/modules.js';

/**
 * `{hub}/{deviceId}/?api-version=…`, a module's `{hub}/{deviceId}/{moduleId}/?api-version=…`;
 * `unversioned` when the username has no api-version.
 */
export function parseHubUsername(
  username: string | undefined,
): { hub: string; deviceId: string; moduleId?: string; unversioned?: true } | undefined {
  if (!username) return undefined;
  // The hub is the text before the first `/` (and `?`) and must contain a `.`: a username with no
  // `.` before its first `/` is no hub's. Every DPS CONNECT (`{idScope}/registrations/…`) is told so
  // here, before the split and the pattern below (the listener shared with the hubs asks for each).
  const dot = username.indexOf('.');
  if (dot === -1) return undefined;
  const slash = username.indexOf('/');
  if (slash !== -1 && slash < dot) return undefined;
  const q = username.indexOf('?');
  const path = q === -1 ? username : username.slice(0, q);
  const query = q === -1 ? '' : username.slice(q + 1);
  // Without `?` the older form `{hub}/{deviceId}/api-version=…` is also spoken.
  const parts = path.split('/');
  let versioned = /(^|&)api-version=/.test(query);
  if (q === -1 && parts.length >= 3 && parts[parts.length - 1]?.startsWith('api-version=')) {
    parts.pop();
    versioned = true;
  }
  if (parts[parts.length - 1] === '') parts.pop();
  const [hub, deviceId, moduleId, ...rest] = parts;
  if (!hub || !deviceId || rest.length > 0 || !hub.includes('.')) return undefined;
  // IoT Hub connects a username without an api-version (azure-docs#16306: connected, sent and
  // received) but fails its twin operations with 400 (andriyadi/AzureIoTHubMQTTClient#5).
  return { hub, deviceId, ...(moduleId ? { moduleId } : {}), ...(versioned ? {} : { unversioned: true as const }) };
}

/** The hub name a CONNECT username names, when it has the IoT Hub shape (DPS's starts with an ID scope). */
export function hubOfUsername(username: string | undefined): string | undefined {
  return parseHubUsername(username)?.hub;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A `a=1&b=2` property bag, percent-decoded (no `+` for space: the SDKs encode with encodeURIComponent). */
export function parsePropertyBag(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const pair of text.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
    properties[name] = safeDecode(eq === -1 ? '' : pair.slice(eq + 1));
  }
  return properties;
}

export type DevicePublish =
  | { kind: 'telemetry'; properties: Record<string, string> }
  | { kind: 'twin-get'; rid: string }
  | { kind: 'twin-reported'; rid: string }
  | { kind: 'method-response'; rid: string; status: number }
  | { kind: 'invalid'; reason: string };

// The hubs take the same longest `$rid` as DPS (MAX_REQUEST_ID_LENGTH says why).
export { MAX_REQUEST_ID_LENGTH };

/**
 * Where a connection's own topics start: `devices/{deviceId}`, or for a module (named by its
 * `moduleKey`, `{deviceId}/{moduleId}`) `devices/{deviceId}/modules/{moduleId}` (azure-iot-common's
 * `moduleEventPath`; azure-docs iot-mqtt-connect-to-iot-hub).
 */
export function identityTopic(key: string): string {
  const { deviceId, moduleId } = splitIdentityKey(key);
  return moduleId === undefined ? `devices/${deviceId}` : `devices/${deviceId}/modules/${moduleId}`;
}

/**
 * What a device (or module: `deviceId` its moduleKey) publishes: telemetry, twin requests, method
 * responses; anything else is refused.
 */
export function parseDevicePublish(topic: string, deviceId: string): DevicePublish {
  const root = identityTopic(deviceId);
  const events = `${root}/messages/events/`;
  if (topic.startsWith(events)) return { kind: 'telemetry', properties: parsePropertyBag(topic.slice(events.length)) };
  if (topic === `${root}/messages/events`) return { kind: 'telemetry', properties: {} };
  if (topic.startsWith('devices/')) {
    return {
      kind: 'invalid',
      reason: `a ${root === `devices/${deviceId}` ? 'device' : 'module'} may only publish on ${events}`,
    };
  }
  const q = topic.indexOf('?');
  const path = q === -1 ? topic : topic.slice(0, q);
  const params = parsePropertyBag(q === -1 ? '' : topic.slice(q + 1));
  const rid = params.$rid;
  if (rid !== undefined && rid.length > MAX_REQUEST_ID_LENGTH) {
    return { kind: 'invalid', reason: `a $rid of ${rid.length} characters, over ${MAX_REQUEST_ID_LENGTH}` };
  }
  if (path === '$iothub/twin/GET/' || path === '$iothub/twin/PATCH/properties/reported/') {
    if (!rid) return { kind: 'invalid', reason: `${path} needs a $rid` };
    return path === '$iothub/twin/GET/' ? { kind: 'twin-get', rid } : { kind: 'twin-reported', rid };
  }
  // The status is the device's own (any int: the SDKs take a number); IoT Hub passes it on.
  const method = /^\$iothub\/methods\/res\/(-?\d{1,10})\/$/.exec(path);
  if (method) {
    if (!rid) return { kind: 'invalid', reason: 'a method response needs a $rid' };
    const status = Number(method[1]);
    if (status > 2 ** 31 - 1 || status < -(2 ** 31))
      return { kind: 'invalid', reason: `a method response status ${method[1]} outside a 32-bit integer` };
    return { kind: 'method-response', rid, status };
  }
  return { kind: 'invalid', reason: `${topic.slice(0, 128)} is not an IoT Hub device topic` };
}

/**
 * The filters a device may subscribe to (its own cloud-to-device queue, twin responses and pushes,
 * methods); a module (`deviceId` its moduleKey) the same but the queue: IoT Hub sends modules no
 * cloud-to-device messages (their `inputs/#`, IoT Edge routing, is not emulated).
 */
export function isDeviceSubscription(filter: string, deviceId: string): boolean {
  return (
    filter === '$iothub/twin/res/#' ||
    filter === '$iothub/twin/PATCH/properties/desired/#' ||
    filter === '$iothub/methods/POST/#' ||
    (!deviceId.includes('/') && filter === `devices/${deviceId}/messages/devicebound/#`)
  );
}

export const DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';

/** The filter direct method requests are published under (the SDKs subscribe to it). */
export const METHODS_FILTER = '$iothub/methods/POST/#';

/**
 * A direct method request's topic as IoT Hub publishes it (azure-docs iot-hub-devguide-direct-methods):
 * `$iothub/methods/POST/{method name}/?$rid={request id}`; the name unencoded (the SDKs read it as
 * the topic's fourth segment and do not decode it; the service refuses names that would break it).
 */
export function methodRequestTopic(methodName: string, rid: string): string {
  return `$iothub/methods/POST/${methodName}/?$rid=${encodeURIComponent(rid)}`;
}

export function twinResponseTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${version !== undefined ? `&$version=${version}` : ''}`;
}

export function desiredPushTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}
