// What the web view sends about the hubs: plain types the page shares (no Node imports here).

/** A JSON object as a twin section holds it. */
export type JsonObject = { [key: string]: JsonValue };
type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/**
 * A hub device as the web view lists it. Built field by field (an allow-list): the identity's
 * keys never are copied; the twin is not here (it is in the detail, fetched when a row opens).
 */
export interface HubDeviceSummary {
  hub: string;
  deviceId: string;
  /** The device's place in the hubs' change feed: it grows with every write of the device. */
  seq: number;
  /** IoT Hub's names: `sas` (symmetric keys), `selfSigned` (X.509 by thumbprint), `certificateAuthority`. */
  authenticationType: 'sas' | 'selfSigned' | 'certificateAuthority';
  status: 'enabled' | 'disabled';
  statusReason?: string;
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedUtc?: string;
  lastActivityUtc?: string;
  createdUtc: string;
  /** The DPS registration that last provisioned it, when DPS created it. */
  registrationId?: string;
  twinVersion: number;
  desiredVersion: number;
  reportedVersion: number;
  /** How many module identities the device has (absent: none). */
  moduleCount?: number;
  /** How many of them are connected (with `moduleCount`). */
  modulesConnected?: number;
}

/** The twin sections as the device (or module) reads them, each with its `$version`. */
export interface TwinSectionsView {
  tags: JsonObject;
  desired: JsonObject;
  reported: JsonObject;
}

/**
 * A module identity of a device as the page shows it (allow-listed as the device: no keys): its
 * connection as the registry records it and its module twin.
 */
export interface HubModuleView {
  moduleId: string;
  /** Who manages the module (`IoT Edge` for the edge runtime's), when set. */
  managedBy?: string;
  authenticationType: HubDeviceSummary['authenticationType'];
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedUtc?: string;
  lastActivityUtc?: string;
  createdUtc: string;
  twinVersion: number;
  desiredVersion: number;
  reportedVersion: number;
  twin: TwinSectionsView;
}

/** A device-to-cloud message as the page shows it: the body as text, clipped. */
export interface TelemetryView {
  receivedUtc: string;
  transport: 'mqtt' | 'https' | 'amqp';
  /** The body as UTF-8 text, or base64 (`encoding`) when it is not UTF-8. */
  body: string;
  encoding: 'utf-8' | 'base64';
  /** Bytes of the body left out of `body`. */
  omittedBytes?: number;
  bytes: number;
  properties: Record<string, string>;
  /** The module that sent it (`ModuleClient`); absent for the device's own messages. */
  moduleId?: string;
}

/** What opening a device shows: its twin as the device reads it (with `$version`s) and its last messages. */
export interface HubDeviceDetail extends HubDeviceSummary {
  twin: TwinSectionsView;
  /** Its module identities, in module id order (at most 20). */
  modules: HubModuleView[];
  /** The newest messages the store keeps of it (its modules' with theirs), oldest first. */
  telemetry: TelemetryView[];
}
