import { describe, expect, it } from 'vitest';
import {
  applyReportedPatch,
  applyServicePatch,
  deviceTwinDocument,
  etagMatches,
  initialTwinState,
  mergePatch,
  parseServiceTwinPatch,
  parseTwinSection,
  TWIN_LIMITS,
  TwinError,
  twinEtag,
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

describe('twin input checks', () => {
  const error = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof TwinError) return err.message;
      throw err;
    }
    throw new Error('expected a TwinError');
  };

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
      /over IoT Hub's 8192-byte limit/,
    );
    const state = initialTwinState(undefined, now);
    const grown = applyReportedPatch(state, filler('a', 20_000), now);
    expect(error(() => applyReportedPatch(grown, filler('b', 20_000), now))).toMatch(/reported would be \d+ bytes/);
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

  it('a registry patch may change tags and desired, never reported', () => {
    expect(parseServiceTwinPatch({ tags: { a: 1 }, properties: { desired: { b: null } } })).toEqual({
      tags: { a: 1 },
      desired: { b: null },
    });
    expect(error(() => parseServiceTwinPatch({ properties: { reported: { a: 1 } } }))).toMatch(
      /only be changed by the device/,
    );
    expect(error(() => parseServiceTwinPatch('x'))).toMatch(/must be a JSON object/);
  });
});
