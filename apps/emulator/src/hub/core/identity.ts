import { randomInt } from 'node:crypto';
import type { TwinState } from './twin.js';

/** A device identity in an emulated hub's registry: symmetric keys, or X.509 by thumbprint (or by CA). */
export interface DeviceIdentity {
  hub: string;
  deviceId: string;
  /** Symmetric keys (`sas`); absent for an X.509 device. */
  primaryKey?: string;
  secondaryKey?: string;
  /**
   * Absent: `sas` (identities stored before X.509 provisioning existed). `certificateAuthority`:
   * identities an earlier version created for DPS X.509 devices; DPS creates `selfSigned` ones.
   */
  authenticationType?: 'sas' | 'selfSigned' | 'certificateAuthority';
  /** `selfSigned`: the certificates' thumbprints, SHA-1 or SHA-256 hex (IoT Hub takes either). */
  primaryThumbprint?: string;
  secondaryThumbprint?: string;
  status: 'enabled' | 'disabled';
  statusReason?: string;
  /** IoT Hub's generation id: new for every identity created under a device id. */
  generationId: string;
  /** Counts identity changes; the device `etag` is derived from it. */
  etagVersion: number;
  createdUtc: string;
  statusUpdatedUtc: string;
  /** The DPS registration that last provisioned it, when DPS created it. */
  registrationId?: string;
}

/** One device of an emulated hub: identity, twin and what the hub observed of it. */
export interface HubDevice {
  identity: DeviceIdentity;
  twin: TwinState;
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedUtc?: string;
  lastActivityUtc?: string;
  /** The transport's name for the connection `connectionState: 'Connected'` describes (never shown). */
  connection?: string;
}

/** IoT Hub's "never" timestamp in registry answers. */
export const NEVER_UTC = '0001-01-01T00:00:00Z';

/** IoT Hub's generation ids are 18 decimal digits (a .NET tick count). */
export function newGenerationId(): string {
  return `6${String(randomInt(0, 1e9)).padStart(9, '0')}${String(randomInt(0, 1e8)).padStart(8, '0')}`;
}

/** The device `etag`: base64 of its change counter, as IoT Hub's look (`"MA=="` for 0). */
export function deviceEtag(identity: DeviceIdentity): string {
  return Buffer.from(String(identity.etagVersion)).toString('base64');
}

/**
 * IoT Hub's device id rule (azure-docs iot-hub-devguide-identity-registry): up to 128 characters,
 * ASCII letters, digits and `- . % _ * ? ! ( ) , : = @ $ '`.
 */
export function isValidDeviceId(deviceId: string): boolean {
  return /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/.test(deviceId);
}
