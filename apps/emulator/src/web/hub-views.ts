import { isUtf8 } from 'node:buffer';
import type { HubDevice } from '../hub/core/identity.js';
import type { HubModule } from '../hub/core/modules.js';
import type { ChangedHubDevice, TelemetryRecord } from '../hub/core/store.js';
import type {
  HubDeviceDetail,
  HubDeviceSummary,
  HubModuleView,
  TelemetryView,
  TwinSectionsView,
} from './hub-view-types.js';

export type { HubDeviceDetail, HubDeviceSummary, HubModuleView, TelemetryView };

/** Bytes of a message body the page gets at most. */
export const MAX_TELEMETRY_BODY_BYTES = 4096;

export function hubDeviceSummary({ seq, device, modules }: ChangedHubDevice): HubDeviceSummary {
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
  if (modules) {
    view.moduleCount = modules.count;
    view.modulesConnected = modules.connected;
  }
  return view;
}

export function hubDeviceDetail(
  changed: ChangedHubDevice,
  modules: readonly HubModule[],
  telemetry: readonly TelemetryRecord[],
): HubDeviceDetail {
  return {
    ...hubDeviceSummary(changed),
    twin: twinSections(changed.device),
    modules: modules.map(hubModuleView),
    telemetry: telemetry.map(telemetryView),
  };
}

/** A module as the page shows it: built field by field, as the device (its keys never copied). */
export function hubModuleView(module: HubModule): HubModuleView {
  const { identity, twin } = module;
  const view: HubModuleView = {
    moduleId: identity.moduleId,
    authenticationType: identity.authenticationType ?? 'sas',
    connectionState: module.connectionState,
    createdUtc: identity.createdUtc,
    twinVersion: twin.version,
    desiredVersion: twin.desiredVersion,
    reportedVersion: twin.reportedVersion,
    twin: twinSections(module),
  };
  if (identity.managedBy) view.managedBy = identity.managedBy;
  if (module.connectionStateUpdatedUtc) view.connectionStateUpdatedUtc = module.connectionStateUpdatedUtc;
  if (module.lastActivityUtc) view.lastActivityUtc = module.lastActivityUtc;
  return view;
}

/** A twin as the device (or module) reads it: tags, and each property section with its `$version`. */
function twinSections({ twin }: HubDevice): TwinSectionsView {
  return {
    tags: twin.tags,
    desired: { ...twin.desired, $version: twin.desiredVersion },
    reported: { ...twin.reported, $version: twin.reportedVersion },
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
  if (message.moduleId !== undefined) view.moduleId = message.moduleId;
  if (message.body.length > shown.length) view.omittedBytes = message.body.length - shown.length;
  return view;
}

/** The keys of these devices: the web view masks them in the answer that shows the devices, should one slip in. */
export function deviceKeys(devices: readonly HubDevice[]): string[] {
  return devices.flatMap((d) => [d.identity.primaryKey, d.identity.secondaryKey]).filter((k): k is string => !!k);
}
