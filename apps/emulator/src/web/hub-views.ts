import { isUtf8 } from 'node:buffer';
import type { HubDevice } from '../hub/core/identity.js';
import type { ChangedHubDevice, TelemetryRecord } from '../hub/core/store.js';
import type { HubDeviceDetail, HubDeviceSummary, TelemetryView } from './hub-view-types.js';

export type { HubDeviceDetail, HubDeviceSummary, TelemetryView };

/** Bytes of a message body the page gets at most. */
export const MAX_TELEMETRY_BODY_BYTES = 4096;

export function hubDeviceSummary({ seq, device }: ChangedHubDevice): HubDeviceSummary {
  const { identity } = device;
  const view: HubDeviceSummary = {
    hub: identity.hub,
    deviceId: identity.deviceId,
    seq,
    authenticationType: identity.authenticationType ?? 'sas',
    status: identity.status,
    connectionState: device.connectionState,
    createdUtc: identity.createdUtc,
    twinVersion: device.twin.version,
    desiredVersion: device.twin.desiredVersion,
    reportedVersion: device.twin.reportedVersion,
  };
  if (identity.statusReason) view.statusReason = identity.statusReason;
  if (device.connectionStateUpdatedUtc) view.connectionStateUpdatedUtc = device.connectionStateUpdatedUtc;
  if (device.lastActivityUtc) view.lastActivityUtc = device.lastActivityUtc;
  if (identity.registrationId) view.registrationId = identity.registrationId;
  return view;
}

export function hubDeviceDetail(changed: ChangedHubDevice, telemetry: readonly TelemetryRecord[]): HubDeviceDetail {
  const { twin } = changed.device;
  return {
    ...hubDeviceSummary(changed),
    twin: {
      tags: twin.tags,
      desired: { ...twin.desired, $version: twin.desiredVersion },
      reported: { ...twin.reported, $version: twin.reportedVersion },
    },
    telemetry: telemetry.map(telemetryView),
  };
}

export function telemetryView(message: TelemetryRecord): TelemetryView {
  const shown = message.body.subarray(0, MAX_TELEMETRY_BODY_BYTES);
  const utf8 = isUtf8(message.body);
  const view: TelemetryView = {
    receivedUtc: message.receivedUtc,
    transport: message.transport,
    // Cut at a byte count, the text may end in half a character: decoded leniently, it shows as U+FFFD.
    body: utf8 ? shown.toString('utf8') : shown.toString('base64'),
    encoding: utf8 ? 'utf-8' : 'base64',
    bytes: message.body.length,
    properties: { ...message.properties },
  };
  if (message.body.length > shown.length) view.omittedBytes = message.body.length - shown.length;
  return view;
}

/** The keys of these devices: the web view masks them in the answer that shows the devices, should one slip in. */
export function deviceKeys(devices: readonly HubDevice[]): string[] {
  return devices.flatMap((d) => [d.identity.primaryKey, d.identity.secondaryKey]).filter((k): k is string => !!k);
}
