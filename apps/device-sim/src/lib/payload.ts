// The allocation entry (zod/mini): the main entry's classic schemas cost every device-sim start about
// 60-80 ms of CPU, for a check that is JSON, a depth bound and an object.
import { decodeJson } from '@dpskit/contracts/allocation';

export type PayloadParse = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

const EXAMPLE = `'{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}'`;

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * Parses the custom provisioning payload a device sends with its register request. DPS forwards it to
 * the allocation webhook as `deviceRuntimeContext.payload`, which must be a JSON object.
 * `source` names where the text came from (`--payload`, `DPS_PAYLOAD`) in the error.
 */
export function parsePayload(text: string, source = '--payload'): PayloadParse {
  const json = decodeJson(text);
  if (json.ok && isPlainObject(json.value)) return { ok: true, value: withoutProtoKey(json.value) };
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { ok: false, message: `${source} is not valid JSON (${reason}); pass a JSON object such as ${EXAMPLE}` };
  }
  return {
    ok: false,
    message: `${source} must be a JSON object such as ${EXAMPLE}, not ${kindOf(decoded)}`,
  };
}

/** True for `{...}` values (not arrays, not null): what `payload` accepts in the library API. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The object without a `__proto__` key of its own, as the contract's record schema gave it before
 * (JSON.parse makes such a key an own property; kept, the SDK would send it). Nested objects are
 * left as they are, as the schema left them.
 */
function withoutProtoKey(value: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(value, '__proto__')) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) if (key !== '__proto__') copy[key] = value[key];
  return copy;
}
