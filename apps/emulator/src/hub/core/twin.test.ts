import { describe, expect, it } from 'vitest';
import {
  applyReportedPatch,
  applyServicePatch,
  applyServiceReplacement,
  deviceTwinDocument,
  etagMatches,
  initialTwinState,
  mergePatch,
  parseServiceTwinPatch,
  parseServiceTwinReplacement,
  parseTwinSection,
  refuseOutOfRangeIntegers,
  TWIN_LIMITS,
  TwinError,
  twinEtag,
  twinSectionSize,
} from './twin.js';

const now = new Date('2026-12-02T12:00:00.000Z');
const later = new Date('2026-12-02T12:05:00.000Z');

/** An object of `bytes` of string values (4,000 characters each: a twin string is at most 4 KB). */
function filler(prefix: string, bytes: number): Record<string, string> {
  return Object.fromEntries(
    Array.from({ length: Math.ceil(bytes / 4000) }, (_, i) => [`${prefix}${i}`, 'x'.repeat(4000)]),
  );
}

describe('twin merge and versions', () => {
  it('merges patches as IoT Hub does: objects key by key, null removes, arrays replace', () => {
    expect(
      mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1, 2] }, { a: null, b: { c: null, x: 'y' }, e: [3], f: false }),
    ).toEqual({ b: { d: 3, x: 'y' }, e: [3], f: false });
  });

  it('starts from the initial twin with every version at 1 and no reported properties', () => {
    const state = initialTwinState(
      { tags: { room: 'kitchen', gone: null }, properties: { desired: { temp: 180 } } },
      now,
    );
    expect(state).toMatchObject({ tags: { room: 'kitchen' }, desired: { temp: 180 }, reported: {}, version: 1 });
    expect(deviceTwinDocument(state)).toEqual({ desired: { temp: 180, $version: 1 }, reported: { $version: 1 } });
    expect(initialTwinState(undefined, now)).toMatchObject({ tags: {}, desired: {}, reported: {} });
  });

  it('counts reported changes in the reported $version and the twin version', () => {
    const first = applyReportedPatch(initialTwinState(undefined, now), { fw: '1.0', nested: { a: 1 } }, later);
    const second = applyReportedPatch(first, { nested: { a: null, b: 2 } }, later);
    expect(second).toMatchObject({
      reported: { fw: '1.0', nested: { b: 2 } },
      reportedVersion: 3,
      version: 3,
      desiredVersion: 1,
    });
    expect(second.reportedUpdatedUtc).toBe(later.toISOString());
  });

  it('pushes the desired delta with the new $version; tags change the twin version only', () => {
    const state = initialTwinState({ properties: { desired: { temp: 180 } } }, now);
    const tagged = applyServicePatch(state, { tags: { site: 'a' } }, later);
    expect(tagged.desiredPush).toBeUndefined();
    expect(tagged.state).toMatchObject({ version: 2, desiredVersion: 1, tags: { site: 'a' } });
    const desired = applyServicePatch(tagged.state, { desired: { temp: 200 } }, later);
    expect(desired.desiredPush).toEqual({ temp: 200, $version: 2 });
    expect(desired.state).toMatchObject({ version: 3, desiredVersion: 2, desired: { temp: 200 } });
  });

  it('etags follow the twin version; If-Match accepts *, quoted and bare etags', () => {
    const state = initialTwinState(undefined, now);
    expect(twinEtag(state)).toBe('AAAAAAAAAAE=');
    expect(etagMatches('"AAAAAAAAAAE="', twinEtag(state))).toBe(true);
    expect(etagMatches('*', 'x')).toBe(true);
    expect(etagMatches(undefined, 'x')).toBe(true);
    expect(etagMatches('"AAAAAAAAAAI="', twinEtag(state))).toBe(false);
  });
});

/** The message of the TwinError `fn` throws. */
function error(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TwinError) return err.message;
    throw err;
  }
  throw new Error('expected a TwinError');
}

describe('twin input checks', () => {
  it('names the property and the cause of a refused key', () => {
    expect(error(() => parseTwinSection({ 'a.b': 1 }, 'reported', true))).toMatch(/"a\.b" in reported contains '\.'/);
    expect(error(() => parseTwinSection({ $version: 1 }, 'desired', true))).toMatch(/'\$'/);
    expect(error(() => parseTwinSection({ 'a b': 1 }, 'tags', true))).toMatch(/space/);
    expect(error(() => parseTwinSection([1], 'tags', true))).toMatch(/tags must be a JSON object/);
  });

  it('refuses nesting past 10 levels and sections over their size limit', () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < TWIN_LIMITS.maxDepth; i++) deep = { n: deep };
    expect(error(() => parseTwinSection(deep, 'reported', true))).toMatch(/deeper than 10 levels/);
    expect(error(() => parseTwinSection(filler('t', 9 * 1024), 'tags', true))).toMatch(
      /^tags is \d+ bytes by IoT Hub's twin size measure, over its 8192-byte limit$/,
    );
    const state = initialTwinState(undefined, now);
    const grown = applyReportedPatch(state, filler('a', 20_000), now);
    expect(error(() => applyReportedPatch(grown, filler('b', 20_000), now))).toMatch(
      /^reported would be \d+ bytes by IoT Hub's twin size measure, over its 32768-byte limit$/,
    );
  });

  it('takes string values of up to 4 KB (UTF-8) and refuses longer ones, naming the property', () => {
    const at = 'x'.repeat(TWIN_LIMITS.maxStringBytes);
    expect(parseTwinSection({ a: { b: at } }, 'reported', true)).toEqual({ a: { b: at } });
    expect(parseTwinSection({ e: '€'.repeat(1365) }, 'tags', true)).toEqual({ e: '€'.repeat(1365) }); // 4,095 bytes
    expect(error(() => parseTwinSection({ a: { b: `${at}x` } }, 'desired', true))).toBe(
      "desired.a.b is a 4097-byte string, over IoT Hub's 4096-byte limit for a string value",
    );
    expect(error(() => parseTwinSection({ e: '€'.repeat(1366) }, 'tags', true))).toBe(
      "tags.e is a 4098-byte string, over IoT Hub's 4096-byte limit for a string value",
    );
    expect(error(() => parseTwinSection({ list: ['x', at + at] }, 'reported', true))).toMatch(
      /^reported\.list\[1\] is a 8192-byte string/,
    );
  });

  it("a registry patch may change tags and desired, never reported (a body's reported and $metadata/$version not kept)", () => {
    expect(parseServiceTwinPatch({ tags: { a: 1 }, properties: { desired: { b: null } } })).toEqual({
      tags: { a: 1 },
      desired: { b: null },
    });
    // As the C# SDK sends a Twin: `new Twin()`'s empty reported, or a twin read with GetTwinAsync.
    expect(parseServiceTwinPatch({ properties: { desired: { b: 1 }, reported: {} } })).toEqual({ desired: { b: 1 } });
    expect(
      parseServiceTwinPatch({
        properties: {
          desired: { b: 1, $metadata: { $lastUpdated: 'x' }, $version: 4 },
          reported: { a: 1, $metadata: { $lastUpdated: 'y' }, $version: 7 },
        },
      }),
    ).toEqual({ desired: { b: 1 } });
    // Nested `$` names are still refused: only the section's own two are the twin's.
    expect(error(() => parseServiceTwinPatch({ properties: { desired: { b: { $x: 1 } } } }))).toMatch(
      /contains '.', '\$'/,
    );
    expect(error(() => parseServiceTwinPatch('x'))).toMatch(/must be a JSON object/);
  });
});

describe("IoT Hub's twin size measure", () => {
  // azure-docs iot-hub-devguide-device-twins, "Device twin size": each property's key and value,
  // keys and strings as UTF-8 without control characters, numbers 8 bytes, booleans 4, objects the
  // sum of their properties.
  it('adds up keys and values as the documentation says, not JSON text', () => {
    // The documentation's own example property: 15 + 13 + 2 (JSON: 37 bytes).
    expect(twinSectionSize({ telemetryConfig: { sendFrequency: '5m' } })).toBe(30);
    expect(twinSectionSize({ batteryLevel: '55%' })).toBe(15);
    // Numbers are 8 bytes whatever their digits, booleans 4.
    expect(twinSectionSize({ a: 1, b: 2.5, c: true, d: false, e: 123456789 })).toBe(5 + 8 + 8 + 4 + 4 + 8);
    // UTF-8 bytes: é 2, € 3.
    expect(twinSectionSize({ é: '€' })).toBe(5);
    // Control characters are not counted: \n (C0, 1 byte) and U+0085 (C1, 2 bytes) add nothing.
    expect(twinSectionSize({ s: 'a\nb\u0085' })).toBe(3);
    // Arrays (the documentation is silent): the sum of their elements.
    expect(twinSectionSize({ list: [1, 'ab', { k: true }] })).toBe(4 + 8 + 2 + 1 + 4);
    // An empty object costs its key; a patch's null costs nothing.
    expect(twinSectionSize({ e: {} })).toBe(1);
    expect(twinSectionSize({ gone: null, kept: 'x' })).toBe(5);
    expect(twinSectionSize({})).toBe(0);
  });

  it('takes a section of exactly 32 KB by the measure (over 32 KB of JSON) and refuses one byte more', () => {
    // 8 × (2-byte key + 4,094-byte string) = 32,768; as JSON 32,817 bytes (the old measure refused it).
    const at = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(4094)]));
    expect(twinSectionSize(at)).toBe(32 * 1024);
    expect(Buffer.byteLength(JSON.stringify(at))).toBeGreaterThan(32 * 1024);
    expect(parseTwinSection(at, 'desired', true)).toBe(at);
    const state = applyReportedPatch(initialTwinState(undefined, now), at, now);
    expect(state.reportedVersion).toBe(2);
    expect(error(() => applyReportedPatch(state, { z: '' }, now))).toBe(
      "reported would be 32769 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
    );
    expect(error(() => parseTwinSection({ ...at, z: '' }, 'desired', true))).toBe(
      "desired is 32769 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
    );
  });

  it('refuses a section of numbers over 32 KB by the measure though its JSON is under 32 KB', () => {
    // 2,600 × (5-byte key + 8) = 33,800; as JSON 2,600 × 10 + 1 = 26,001 bytes (the old measure took it).
    const numbers = Object.fromEntries(Array.from({ length: 2600 }, (_, i) => [`n${String(i).padStart(4, '0')}`, 1]));
    expect(Buffer.byteLength(JSON.stringify(numbers))).toBeLessThan(32 * 1024);
    const state = initialTwinState(undefined, now);
    expect(error(() => applyServicePatch(state, { desired: numbers }, now))).toBe(
      "desired would be 33800 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
    );
    // Tags: 8 KB. 700 × (5 + 8) = 9,100; as JSON 7,001 bytes.
    const tags = Object.fromEntries(Array.from({ length: 700 }, (_, i) => [`t${String(i).padStart(4, '0')}`, 2]));
    expect(Buffer.byteLength(JSON.stringify(tags))).toBeLessThan(8 * 1024);
    expect(error(() => parseServiceTwinPatch({ tags }))).toBe(
      "tags is 9100 bytes by IoT Hub's twin size measure, over its 8192-byte limit",
    );
  });

  it('refuses only an operation that would increase a section above its limit', () => {
    // A section already over the limit (stored by an emulator that measured JSON): a patch that
    // shrinks or keeps its size is taken, one that grows it is refused.
    const over = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`n${String(i).padStart(4, '0')}`, 1]));
    const state = { ...initialTwinState(undefined, now), reported: over };
    expect(twinSectionSize(over)).toBe(39_000);
    const shrunk = applyReportedPatch(state, { n0000: null, n0001: 'x' }, now);
    expect(twinSectionSize(shrunk.reported)).toBe(39_000 - 13 - 8 + 1);
    expect(applyReportedPatch(shrunk, { n0001: 'y' }, now).reported.n0001).toBe('y');
    expect(error(() => applyReportedPatch(shrunk, { n0001: 'xy' }, now))).toMatch(/^reported would be 38981 bytes/);
  });
});

describe("integers outside IoT Hub's range in a twin patch's text", () => {
  const range = "outside IoT Hub's integer range (-4503599627370496 to 4503599627370495)";
  it('refuses the first, named by its path in the section', () => {
    expect(error(() => refuseOutOfRangeIntegers('{"a":{"serial":5283920058631410000}}', 'reported'))).toBe(
      `reported.a.serial is 5283920058631410000, ${range}`,
    );
    expect(refuseOutOfRangeIntegers('{"a":4503599627370495,"b":1e300}', 'reported')).toBeUndefined();
  });

  it("checks a registry patch's tags and desired properties, by their section paths", () => {
    expect(error(() => refuseOutOfRangeIntegers('{"properties":{"desired":{"big":[1,-9007199254740993]}}}'))).toBe(
      `desired.big[1] is -9007199254740993, ${range}`,
    );
    expect(error(() => refuseOutOfRangeIntegers('{"tags":{"t":9007199254740993}}'))).toBe(
      `tags.t is 9007199254740993, ${range}`,
    );
    // Members the hub does not keep are not its business.
    expect(refuseOutOfRangeIntegers('{"version":99999999999999999,"tags":{}}')).toBeUndefined();
  });

  it('clips a long literal in the message', () => {
    expect(error(() => refuseOutOfRangeIntegers(`{"n":${'9'.repeat(5000)}}`, 'desired'))).toBe(
      `desired.n is ${'9'.repeat(64)}…(4936 more characters), ${range}`,
    );
  });
});

describe('replacing a twin (PUT /twins/{id})', () => {
  it('takes the tags and desired properties whole, leaves out the rest and the $-names, and pushes removals as null', () => {
    const state = applyServicePatch(
      initialTwinState(undefined, now),
      parseServiceTwinPatch({ tags: { a: 1 }, properties: { desired: { keep: 1, drop: { deep: 2 } } } }),
      now,
    ).state;
    const replacement = parseServiceTwinReplacement({
      deviceId: 'ignored',
      tags: { b: 2 },
      properties: { desired: { keep: 3, $version: 9, $metadata: {} }, reported: { ignored: true } },
    });
    expect(replacement).toEqual({ tags: { b: 2 }, desired: { keep: 3 } });
    const { state: next, desiredPush } = applyServiceReplacement(state, replacement, later);
    expect(next.tags).toEqual({ b: 2 });
    expect(next.desired).toEqual({ keep: 3 });
    expect(next.desiredVersion).toBe(state.desiredVersion + 1);
    expect(next.version).toBe(state.version + 1);
    expect(desiredPush).toEqual({ drop: null, keep: 3, $version: next.desiredVersion });
    expect(parseServiceTwinReplacement({})).toEqual({ tags: {}, desired: {} });
  });

  it('refuses nulls (a replacement deletes by leaving out), a non-object, and sections over their limits', () => {
    expect(() => parseServiceTwinReplacement({ tags: { a: null } })).toThrow(TwinError);
    expect(() => parseServiceTwinReplacement('twin')).toThrow('the twin must be a JSON object');
    expect(() => parseServiceTwinReplacement({ properties: [] })).toThrow('properties must be a JSON object');
    expect(() => parseServiceTwinReplacement({ tags: filler('t', TWIN_LIMITS.maxBytes.tags + 1) })).toThrow(
      /over its 8192-byte limit/,
    );
  });
});
