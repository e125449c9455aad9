import { type DeviceIdentity, deviceEtag, type HubDevice, NEVER_UTC } from './identity.js';
import { type JsonObject, serviceTwinProperties, twinEtag } from './twin.js';

/** The registry's `x509Thumbprint`: null for devices (and modules) without thumbprints, as IoT Hub answers. */
export function thumbprints(identity: DeviceIdentity): {
  primaryThumbprint: string | null;
  secondaryThumbprint: string | null;
} {
  return {
    primaryThumbprint: identity.primaryThumbprint ?? null,
    secondaryThumbprint: identity.secondaryThumbprint ?? null,
  };
}

/** The registry's `authentication` of a device or module: its keys (as IoT Hub gives them to `iothubowner`) or thumbprints. */
export function authenticationView(identity: DeviceIdentity): Record<string, unknown> {
  return {
    symmetricKey: { primaryKey: identity.primaryKey ?? null, secondaryKey: identity.secondaryKey ?? null },
    x509Thumbprint: thumbprints(identity),
    type: identity.authenticationType ?? 'sas',
  };
}

/**
 * `GET /devices/{id}` as IoT Hub answers it (api-version 2021-04-12), in its field order. Keys are
 * included as the real registry returns them to `iothubowner`. `c2dCount`: the messages in the
 * device's cloud-to-device queue (IoT Hub's `cloudToDeviceMessageCount`, "currently queued").
 */
export function deviceView(device: HubDevice, c2dCount = 0): Record<string, unknown> {
  const { identity } = device;
  return {
    deviceId: identity.deviceId,
    generationId: identity.generationId,
    etag: deviceEtag(identity),
    connectionState: device.connectionState,
    status: identity.status,
    statusReason: identity.statusReason ?? null,
    connectionStateUpdatedTime: device.connectionStateUpdatedUtc ?? NEVER_UTC,
    statusUpdatedTime: identity.statusUpdatedUtc,
    lastActivityTime: device.lastActivityUtc ?? NEVER_UTC,
    cloudToDeviceMessageCount: c2dCount,
    authentication: authenticationView(identity),
    capabilities: { iotEdge: false },
  };
}

/** `GET /twins/{id}` as IoT Hub answers it, in its field order (`c2dCount` as `deviceView`'s). */
export function twinView(device: HubDevice, c2dCount = 0): Record<string, unknown> {
  const { identity, twin } = device;
  return {
    deviceId: identity.deviceId,
    etag: twinEtag(twin),
    deviceEtag: deviceEtag(identity),
    status: identity.status,
    statusUpdateTime: identity.statusUpdatedUtc,
    connectionState: device.connectionState,
    lastActivityTime: device.lastActivityUtc ?? NEVER_UTC,
    cloudToDeviceMessageCount: c2dCount,
    authenticationType: identity.authenticationType ?? 'sas',
    x509Thumbprint: thumbprints(identity),
    modelId: '',
    version: twin.version,
    tags: twin.tags as JsonObject,
    properties: serviceTwinProperties(twin),
    capabilities: { iotEdge: false },
  };
}

export type { DeviceIdentity };
