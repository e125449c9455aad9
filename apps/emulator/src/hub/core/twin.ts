import type { InitialTwin } from '@dpskit/contracts';
import { clip } from '../../core/client-text.js';
import { type OutOfRangeInteger, outOfRangeIntegers, TWIN_INTEGER_MAX, TWIN_INTEGER_MIN } from './twin-integers.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A device twin as the emulated hub keeps it: the three sections without their `$version` and
 * `$metadata`, which are derived from the counters here. Pure data, stored as JSON.
 */
export interface TwinState {
  tags: JsonObject;
  desired: JsonObject;
  reported: JsonObject;
  /** `properties.desired.$version`: counts desired-property changes. */
  desiredVersion: number;
  /** `properties.reported.$version`: counts reported-property changes. */
  reportedVersion: number;
  /** The twin's `version`: counts every change (tags, desired, reported). */
  version: number;
  desiredUpdatedUtc: string;
  reportedUpdatedUtc: string;
}

/**
 * IoT Hub's documented twin limits (azure-docs iot-hub-devguide-device-twins, "Tags and
 * properties format", "Device twin size"): values nest at most 10 levels; keys up to 1 KB, without
 * `.`, `$`, space or control characters; "String values are UTF-8 encoded and can have a maximum
 * length of 4 KB"; tags 8 KB, desired and reported 32 KB each, measured by `twinSectionSize`.
 */
export const TWIN_LIMITS = {
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxStringBytes: 4 * 1024,
  maxBytes: { tags: 8 * 1024, desired: 32 * 1024, reported: 32 * 1024 },
} as const;

export type TwinSection = 'tags' | 'desired' | 'reported';

/** A twin document or patch that IoT Hub would refuse (HTTP 400, MQTT status 400). */
export class TwinError extends Error {
  override readonly name = 'TwinError';
  constructor(
    readonly code: 'ArgumentInvalid' | 'PreconditionFailed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks a section (or a patch of one) against IoT Hub's format rules and returns it typed.
 * `patch`: nulls are allowed (they delete the property). Messages name the path and the cause.
 */
export function parseTwinSection(value: unknown, section: TwinSection, patch: boolean): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TwinError('ArgumentInvalid', `${section} must be a JSON object`);
  }
  checkObject(value as Record<string, unknown>, section, 1, patch);
  // A patch's nulls count nothing: this is the size of what it writes (an initial twin's nulls
  // are dropped), which the merged section holds all of.
  const size = twinSectionSize(value as JsonObject);
  if (size > TWIN_LIMITS.maxBytes[section]) {
    throw new TwinError(
      'ArgumentInvalid',
      `${section} is ${size} bytes by IoT Hub's twin size measure, over its ${TWIN_LIMITS.maxBytes[section]}-byte limit`,
    );
  }
  return value as JsonObject;
}

/**
 * Refuses a twin patch, given as the text it was parsed from, that holds an integer outside IoT
 * Hub's range (-2^52 to 2^52 - 1, see `twin-integers.ts`), naming the first: parsed, it would have
 * been rounded past ±2^53 without a word, or kept where IoT Hub keeps none. `section`: the text is
 * that section's patch (a device's reported properties); without it, a registry twin patch, whose
 * `tags` and `properties.desired` are checked (its other members are not kept).
 */
export function refuseOutOfRangeIntegers(text: string, section?: TwinSection): void {
  for (const { path, literal } of outOfRangeIntegers(text)) {
    const at = section ? `${section}${path === '' || path.startsWith('[') ? '' : '.'}${path}` : registryPath(path);
    if (at === undefined) continue;
    throw new TwinError(
      'ArgumentInvalid',
      `${at} is ${clip(literal, 64)}, outside IoT Hub's integer range (${TWIN_INTEGER_MIN} to ${TWIN_INTEGER_MAX})`,
    );
  }
}

/**
 * The first integer literal of `text` (a JSON document `JSON.parse` took) outside IoT Hub's range
 * (see `twin-integers.ts`) that lies in an initial twin's tags or desired properties, with its path
 * from the document's root and why, or undefined. `twinAt`: a regular expression source for the
 * path of an initial twin in the document (`initialTwin`, `enrollments\[\d+\]\.initialTwin`).
 * An enrollment's or a webhook's initial twin reaches the hub already parsed, where such an integer
 * is rounded (past ±2^53) or kept where IoT Hub keeps none, so their text is checked when it is read.
 */
export function initialTwinIntegerProblem(text: string, twinAt: string): { path: string; cause: string } | undefined {
  return firstInInitialTwin(outOfRangeIntegers(text), twinAt);
}

/**
 * The first of `found` (integers outside IoT Hub's range, from `outOfRangeIntegers` or another
 * reader of the text, such as YAML's) that lies in an initial twin's tags or desired properties.
 */
export function firstInInitialTwin(
  found: readonly OutOfRangeInteger[],
  twinAt: string,
): { path: string; cause: string } | undefined {
  // Nearly always none (a webhook's every answer comes here): then no expression is built.
  if (found.length === 0) return undefined;
  const inTwin = new RegExp(`^(?:${twinAt})\\.(?:tags|properties\\.desired)[.[]`);
  for (const { path, literal } of found) {
    if (!inTwin.test(path)) continue;
    return {
      path,
      cause: `${clip(literal, 64)} is outside IoT Hub's integer range (${TWIN_INTEGER_MIN} to ${TWIN_INTEGER_MAX})`,
    };
  }
  return undefined;
}

/** A registry patch's path as the twin's section path (`properties.desired.a` → `desired.a`), if kept. */
function registryPath(path: string): string | undefined {
  if (/^tags[.[]/.test(path)) return path;
  if (/^properties\.desired[.[]/.test(path)) return path.slice('properties.'.length);
  return undefined;
}

/**
 * The size IoT Hub counts against a twin section's limit (azure-docs iot-hub-devguide-device-twins,
 * "Device twin size"): for each property, the length of its key plus the length of its value;
 * keys and string values as UTF-8 strings, "computed by counting all characters, excluding UNICODE
 * control characters (segments C0 and C1)"; a number 8 bytes, a boolean 4; an object the sum of
 * its properties. Not JSON's length: no quotes, colons, commas or braces, and `1` costs 8.
 * Where the text is silent the emulator chooses: a string's characters are counted in UTF-8 bytes
 * (the limits are in KB, and the 4 KB string limit is in UTF-8), control characters as .NET's
 * `char.IsControl` has them (U+0000–U+001F, U+007F–U+009F, as for keys); an array counts the sum
 * of its elements (they have no keys); `null` (a patch's delete) counts nothing, key included.
 * `$version` and `$metadata` are not in the sections the hub keeps, so never counted.
 */
export function twinSectionSize(section: JsonObject): number {
  let size = 0;
  for (const key of Object.keys(section)) {
    const value = section[key] as JsonValue;
    if (value === null) continue;
    size += countedStringBytes(key) + twinValueSize(value);
  }
  return size;
}

function twinValueSize(value: JsonValue): number {
  if (typeof value === 'string') return countedStringBytes(value);
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (value === null) return 0;
  if (Array.isArray(value)) {
    let size = 0;
    for (const item of value) size += twinValueSize(item);
    return size;
  }
  return twinSectionSize(value);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters IoT Hub's twin size leaves out
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** UTF-8 bytes of `text` without its control characters (C0 and DEL: 1 byte each; C1: 2). */
function countedStringBytes(text: string): number {
  const bytes = Buffer.byteLength(text);
  if (!CONTROL_CHARACTER.test(text)) return bytes;
  let uncounted = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) uncounted += code < 0x80 ? 1 : 2;
  }
  return bytes - uncounted;
}

function checkObject(value: Record<string, unknown>, path: string, depth: number, allowNull: boolean): void {
  if (depth > TWIN_LIMITS.maxDepth) {
    throw new TwinError('ArgumentInvalid', `${path} nests deeper than ${TWIN_LIMITS.maxDepth} levels`);
  }
  for (const [key, child] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (key.length === 0) throw new TwinError('ArgumentInvalid', `${path} has an empty property name`);
    if (Buffer.byteLength(key) > TWIN_LIMITS.maxKeyBytes) {
      throw new TwinError(
        'ArgumentInvalid',
        `a property name in ${path} is longer than ${TWIN_LIMITS.maxKeyBytes} bytes`,
      );
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: IoT Hub forbids C0 and C1 control characters in keys
    if (/[.$ \u0000-\u001f\u007f-\u009f]/.test(key)) {
      throw new TwinError(
        'ArgumentInvalid',
        `property name "${key.slice(0, 64)}" in ${path} contains '.', '$', a space or a control character`,
      );
    }
    checkValue(child, at, depth, allowNull);
  }
}

function checkValue(value: unknown, path: string, depth: number, allowNull: boolean): void {
  if (value === null) {
    if (!allowNull) throw new TwinError('ArgumentInvalid', `${path} is null (null only deletes, in a patch)`);
    return;
  }
  if (Array.isArray(value)) {
    if (depth + 1 > TWIN_LIMITS.maxDepth) {
      throw new TwinError('ArgumentInvalid', `${path} nests deeper than ${TWIN_LIMITS.maxDepth} levels`);
    }
    for (const [index, item] of value.entries()) checkValue(item, `${path}[${index}]`, depth + 1, false);
    return;
  }
  if (typeof value === 'object') {
    // Nulls inside a patch's nested object delete nested properties too.
    checkObject(value as Record<string, unknown>, path, depth + 1, allowNull);
    return;
  }
  if (typeof value === 'string' && value.length > TWIN_LIMITS.maxStringBytes / 3) {
    // (Up to 3 bytes a UTF-16 unit: shorter strings are within the limit without counting.)
    const bytes = Buffer.byteLength(value);
    if (bytes > TWIN_LIMITS.maxStringBytes) {
      throw new TwinError(
        'ArgumentInvalid',
        `${path} is a ${bytes}-byte string, over IoT Hub's ${TWIN_LIMITS.maxStringBytes}-byte limit for a string value`,
      );
    }
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TwinError('ArgumentInvalid', `${path} is not a finite number`);
  }
  if (!['string', 'number', 'boolean'].includes(typeof value)) {
    throw new TwinError('ArgumentInvalid', `${path} is not a JSON value`);
  }
}

/**
 * JSON merge patch as IoT Hub applies twin patches: objects merge key by key, `null` removes a
 * property, anything else (arrays included) replaces. Returns a new object.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const current = result[key];
      result[key] = mergePatch(isObject(current) ? current : {}, value);
    } else {
      result[key] = value;
    }
  }
  return result;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Drops nulls (an initial twin's `null` means "no such property"). */
function withoutNulls(value: JsonObject): JsonObject {
  return mergePatch({}, value);
}

/**
 * The twin a new device identity gets: the initial twin's tags and desired properties (DPS writes
 * them on initial assignment and on "reprovision and reset"), no reported properties, version 1
 * on every counter.
 */
export function initialTwinState(initialTwin: InitialTwin | undefined, now: Date): TwinState {
  const tags = initialTwin?.tags ? parseTwinSection(initialTwin.tags, 'tags', true) : {};
  const desired = initialTwin?.properties?.desired
    ? parseTwinSection(initialTwin.properties.desired, 'desired', true)
    : {};
  const at = now.toISOString();
  return {
    tags: withoutNulls(tags),
    desired: withoutNulls(desired),
    reported: {},
    desiredVersion: 1,
    reportedVersion: 1,
    version: 1,
    desiredUpdatedUtc: at,
    reportedUpdatedUtc: at,
  };
}

/** A reported-properties PATCH from the device (MQTT `$iothub/twin/PATCH/properties/reported/`). */
export function applyReportedPatch(state: TwinState, patch: unknown, now: Date): TwinState {
  const parsed = parseTwinSection(patch, 'reported', true);
  const reported = mergePatch(state.reported, parsed);
  checkSize(state.reported, reported, 'reported');
  return {
    ...state,
    reported,
    reportedVersion: state.reportedVersion + 1,
    version: state.version + 1,
    reportedUpdatedUtc: now.toISOString(),
  };
}

/** What the registry's `PATCH /twins/{id}` may change: tags and desired properties. */
export interface ServiceTwinPatch {
  tags?: JsonObject;
  desired?: JsonObject;
}

/**
 * Parses a `PATCH /twins/{id}` body: `{tags?, properties?: {desired?}}`. Reported properties are the
 * device's: a body's `properties.reported` is not kept, nor are the desired section's `$metadata` and
 * `$version` (the twin's own), as for a replace. The C# SDK sends both whatever the caller set: its
 * TwinJsonConverter writes `properties.reported` whenever it is not null, and `new Twin()` makes it
 * an empty collection, so the docs' own sample (`var twinPatch = new Twin(); twinPatch.Properties
 * .Desired[name] = value; UpdateTwinAsync(id, twinPatch, etag)`) sends `"reported":{}`, and the
 * docs' get-then-update sample (`GetTwinAsync`, set a desired property, `UpdateTwinAsync(twin
 * .DeviceId, twin, twin.ETag)`, azure-docs iot-hub-csharp twin how-to) sends the whole twin read,
 * reported properties and `$metadata`/`$version` included; IoT Hub takes both.
 */
export function parseServiceTwinPatch(body: unknown): ServiceTwinPatch {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TwinError('ArgumentInvalid', 'the twin patch must be a JSON object');
  }
  const { tags, properties } = body as { tags?: unknown; properties?: unknown };
  const patch: ServiceTwinPatch = {};
  if (tags !== undefined && tags !== null) patch.tags = parseTwinSection(tags, 'tags', true);
  if (properties !== undefined && properties !== null) {
    if (typeof properties !== 'object' || Array.isArray(properties)) {
      throw new TwinError('ArgumentInvalid', 'properties must be a JSON object');
    }
    const { desired } = properties as { desired?: unknown };
    if (desired !== undefined && desired !== null)
      patch.desired = parseTwinSection(withoutTwinMetadata(desired), 'desired', true);
  }
  return patch;
}

/**
 * Applies a registry twin patch. Returns the new state and, when desired properties changed, the
 * patch IoT Hub pushes to a connected device (with the new `$version`).
 */
export function applyServicePatch(
  state: TwinState,
  patch: ServiceTwinPatch,
  now: Date,
): { state: TwinState; desiredPush?: JsonObject } {
  let next = state;
  if (patch.tags) {
    const tags = mergePatch(next.tags, patch.tags);
    checkSize(next.tags, tags, 'tags');
    next = { ...next, tags, version: next.version + 1 };
  }
  if (!patch.desired) return { state: next };
  const desired = mergePatch(next.desired, patch.desired);
  checkSize(next.desired, desired, 'desired');
  next = {
    ...next,
    desired,
    desiredVersion: next.desiredVersion + 1,
    version: next.version + 1,
    desiredUpdatedUtc: now.toISOString(),
  };
  return { state: next, desiredPush: { ...patch.desired, $version: next.desiredVersion } };
}

/**
 * `PUT /twins/{id}` (replace: the C# SDK's `ReplaceTwinAsync`, Python's `replace_twin`): the body's
 * `tags` and `properties.desired` become the twin's whole sections (absent: empty); the rest of
 * the body (reported properties, `deviceId`, `etag`, … of a twin as `GET` answered it) is not
 * kept, and `$`-names of the desired section (`$metadata`, `$version`) are the twin's own. No nulls.
 */
export function parseServiceTwinReplacement(body: unknown): { tags: JsonObject; desired: JsonObject } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TwinError('ArgumentInvalid', 'the twin must be a JSON object');
  }
  const { tags, properties } = body as { tags?: unknown; properties?: unknown };
  if (
    properties !== undefined &&
    properties !== null &&
    (typeof properties !== 'object' || Array.isArray(properties))
  ) {
    throw new TwinError('ArgumentInvalid', 'properties must be a JSON object');
  }
  const desired = (properties as { desired?: unknown } | null | undefined)?.desired ?? {};
  return {
    tags: tags === undefined || tags === null ? {} : parseTwinSection(tags, 'tags', false),
    desired: parseTwinSection(withoutTwinMetadata(desired), 'desired', false),
  };
}

/** A desired section as a twin read from the hub carries it, without the twin's own `$metadata` and `$version`. */
function withoutTwinMetadata(section: unknown): unknown {
  if (!isObject(section as JsonValue)) return section;
  return Object.fromEntries(
    Object.entries(section as JsonObject).filter(([key]) => key !== '$metadata' && key !== '$version'),
  );
}

/**
 * Replaces a twin's tags and desired properties. The device is pushed the change as a patch: the
 * new properties whole and a `null` for each one removed (what takes its copy from old to new; IoT
 * Hub does not document what it sends on a replace). Both versions move on, as on any service write.
 */
export function applyServiceReplacement(
  state: TwinState,
  replacement: { tags: JsonObject; desired: JsonObject },
  now: Date,
): { state: TwinState; desiredPush: JsonObject } {
  checkSize(state.tags, replacement.tags, 'tags');
  checkSize(state.desired, replacement.desired, 'desired');
  const removed = Object.keys(state.desired).filter((key) => !Object.hasOwn(replacement.desired, key));
  const next: TwinState = {
    ...state,
    tags: replacement.tags,
    desired: replacement.desired,
    desiredVersion: state.desiredVersion + 1,
    version: state.version + 1,
    desiredUpdatedUtc: now.toISOString(),
  };
  return {
    state: next,
    desiredPush: {
      ...Object.fromEntries(removed.map((key) => [key, null])),
      ...replacement.desired,
      $version: next.desiredVersion,
    },
  };
}

/**
 * "IoT Hub rejects with an error all operations that would increase the size of the tags,
 * properties/desired, or properties/reported documents above the limit": a patch that leaves a
 * section over its limit without growing it is taken (a twin stored over the limit, as an older
 * emulator measuring JSON bytes could keep one, can still be shrunk).
 */
function checkSize(before: JsonObject, after: JsonObject, name: TwinSection): void {
  const size = twinSectionSize(after);
  if (size > TWIN_LIMITS.maxBytes[name] && size > twinSectionSize(before)) {
    throw new TwinError(
      'ArgumentInvalid',
      `${name} would be ${size} bytes by IoT Hub's twin size measure, over its ${TWIN_LIMITS.maxBytes[name]}-byte limit`,
    );
  }
}

/** The twin's etag: IoT Hub's form, base64 of the version as a big-endian 64-bit integer. */
export function twinEtag(state: TwinState): string {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(state.version));
  return buffer.toString('base64');
}

/** Whether an `If-Match` header allows a write of `etag` (absent or `*`: always). */
export function etagMatches(ifMatch: string | undefined, etag: string): boolean {
  if (ifMatch === undefined) return true;
  const value = ifMatch
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
  return value === '*' || value === etag;
}

/** What the device gets for `$iothub/twin/GET`: desired and reported with their `$version`s, no tags. */
export function deviceTwinDocument(state: TwinState): { desired: JsonObject; reported: JsonObject } {
  return {
    desired: { ...state.desired, $version: state.desiredVersion },
    reported: { ...state.reported, $version: state.reportedVersion },
  };
}

/** The twin's `properties` as the registry shows them, with `$metadata` (top level only) and `$version`. */
export function serviceTwinProperties(state: TwinState): { desired: JsonObject; reported: JsonObject } {
  return {
    desired: {
      ...state.desired,
      $metadata: { $lastUpdated: state.desiredUpdatedUtc, $lastUpdatedVersion: state.desiredVersion },
      $version: state.desiredVersion,
    },
    reported: {
      ...state.reported,
      $metadata: { $lastUpdated: state.reportedUpdatedUtc },
      $version: state.reportedVersion,
    },
  };
}
