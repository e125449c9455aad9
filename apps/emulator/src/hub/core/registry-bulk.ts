import { clip } from '../../core/client-text.js';
import { HubError } from './hub-service.js';

/** IoT Hub takes at most 100 devices in one bulk registry call (azure-iothub refuses more itself). */
export const MAX_BULK_DEVICES = 100;

/**
 * The import modes `POST /devices` serves: those `azure-iothub`'s `addDevices` (`create`),
 * `updateDevices` (`Update`, `UpdateIfMatchETag`) and `removeDevices` (`Delete`,
 * `DeleteIfMatchETag`) send, and `createOrUpdate`. IoT Hub reads them in any case (the Node SDK
 * sends `create` and `Update` alike).
 */
const IMPORT_MODES = {
  create: 'create',
  createorupdate: 'createOrUpdate',
  update: 'update',
  updateifmatchetag: 'updateIfMatchETag',
  delete: 'delete',
  deleteifmatchetag: 'deleteIfMatchETag',
} as const;
export type ImportMode = (typeof IMPORT_MODES)[keyof typeof IMPORT_MODES];

/** One device of a bulk call: its id, what to do, the etag it must match, the device fields given. */
export interface BulkEntry {
  deviceId: string;
  importMode: ImportMode;
  etag?: string;
  /** The device as `PUT /devices/{id}` takes it (status, statusReason, authentication). */
  device: Record<string, unknown>;
}

/** IoT Hub's `BulkRegistryOperationResult`. */
export interface BulkRegistryResult {
  isSuccessful: boolean;
  errors: { deviceId: string; errorCode: string; errorStatus: string }[];
  warnings: { deviceId: string; warningCode: string; warningStatus: string }[];
}

/**
 * Reads a bulk call's body (`ExportImportDevice[]`: `id`, `importMode`, `eTag`, the device's
 * fields). What makes the whole call unreadable is refused (400 naming the field, 413 past 100
 * devices); each device's own failure is its entry in the result instead.
 */
export function parseBulkDevices(body: unknown): BulkEntry[] {
  if (!Array.isArray(body)) throw new HubError(400, 'ArgumentInvalid', 'The body must be a JSON array of devices.');
  if (body.length === 0) throw new HubError(400, 'ArgumentInvalid', 'The body names no device.');
  if (body.length > MAX_BULK_DEVICES) {
    throw new HubError(
      413,
      'TooManyDevices',
      `A bulk registry call takes at most ${MAX_BULK_DEVICES} devices, not ${body.length}.`,
    );
  }
  return body.map((item: unknown, i): BulkEntry => {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new HubError(400, 'ArgumentInvalid', `[${i}] must be a device (a JSON object).`);
    const fields = item as Record<string, unknown>;
    // IoT Hub reads these names in any case (the Node SDK's devices carry `etag`, the C# SDK's `eTag`).
    const field = (name: string) => {
      const key = Object.keys(fields).find((k) => k.toLowerCase() === name.toLowerCase());
      return key === undefined ? undefined : fields[key];
    };
    const id = field('id');
    if (typeof id !== 'string' || id === '')
      throw new HubError(400, 'ArgumentInvalid', `[${i}].id must be the device id (a non-empty string).`);
    const mode = field('importMode');
    const importMode =
      typeof mode === 'string' ? IMPORT_MODES[mode.toLowerCase() as keyof typeof IMPORT_MODES] : undefined;
    if (!importMode) {
      throw new HubError(
        400,
        'ArgumentInvalid',
        `[${i}].importMode "${clip(String(mode))}" is not served: ${Object.values(IMPORT_MODES).join(', ')}.`,
      );
    }
    const etag = field('eTag');
    if (etag !== undefined && etag !== null && typeof etag !== 'string')
      throw new HubError(400, 'ArgumentInvalid', `[${i}].eTag must be a string.`);
    const device: Record<string, unknown> = {};
    for (const name of ['status', 'statusReason', 'authentication'])
      if (field(name) !== undefined && field(name) !== null) device[name] = field(name);
    return { deviceId: id, importMode, ...(typeof etag === 'string' && etag !== '' ? { etag } : {}), device };
  });
}
