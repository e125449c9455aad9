import { type AllocationDecision, type AllocationRequest, accept, type InitialTwin, reject } from '@dpskit/allocator';

/**
 * Devices report their firmware in the registration payload: `{ "firmwareVersion": "2.4.0" }`.
 * Firmware 2.x and later goes to the linked hub whose name ends in `-current`, 1.x to the one
 * ending in `-legacy`; 0.x is refused. Each device gets an initial twin with its firmware line,
 * the firmware it should move to, and a telemetry interval.
 */
export type FirmwareLine = 'current' | 'legacy';

/** What the devices of each line are told to install (desired property `firmwareTarget`). */
export const FIRMWARE_TARGET: Record<FirmwareLine, string> = { current: '2.6.0', legacy: '1.9.4' };
const TELEMETRY_INTERVAL_SECONDS: Record<FirmwareLine, number> = { current: 30, legacy: 300 };

export const Message = {
  NoVersion: 'The registration payload needs "firmwareVersion" as major.minor.patch, e.g. "2.4.0".',
  Unsupported: (version: string) => `Firmware ${version} is not supported: update the device to 1.0.0 or later.`,
  NoHub: (line: FirmwareLine) => `No linked IoT hub is named *-${line} for this device's firmware.`,
} as const;

export function parseFirmwareVersion(value: unknown): [number, number, number] | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,4})\.(\d{1,4})\.(\d{1,4})$/.exec(value);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

export function initialTwinFor(line: FirmwareLine): InitialTwin {
  return {
    tags: { firmwareLine: line },
    properties: {
      desired: { firmwareTarget: FIRMWARE_TARGET[line], telemetryIntervalSeconds: TELEMETRY_INTERVAL_SECONDS[line] },
    },
  };
}

export function firmwarePolicy(request: AllocationRequest): AllocationDecision {
  const reported = request.deviceRuntimeContext.payload?.firmwareVersion;
  const version = parseFirmwareVersion(reported);
  if (!version) return reject(Message.NoVersion);
  const [major] = version;
  if (major < 1) return reject(Message.Unsupported(String(reported)));

  const line: FirmwareLine = major >= 2 ? 'current' : 'legacy';
  // `contoso-fw-current.azure-devices.net` → `contoso-fw-current`
  const hub = request.linkedHubs.find((h) => h.split('.')[0]?.toLowerCase().endsWith(`-${line}`));
  if (!hub) return reject(Message.NoHub(line));

  return accept({
    iotHubHostName: hub,
    initialTwin: initialTwinFor(line),
    // Returned to the device with its assignment (DPS puts it in registrationState.payload).
    payload: { firmwareLine: line, firmwareTarget: FIRMWARE_TARGET[line] },
  });
}
