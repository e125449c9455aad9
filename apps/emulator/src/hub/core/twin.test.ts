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
    expect(error(() => parseTwinSection({ big: 'x'.repeat(9 * 1024) }, 'tags', true))).toMatch(
      /over IoT Hub's 8192-byte limit/,
    );
    const state = initialTwinState(undefined, now);
    const grown = applyReportedPatch(state, { a: 'x'.repeat(20_000) }, now);
    expect(error(() => applyReportedPatch(grown, { b: 'x'.repeat(20_000) }, now))).toMatch(
      /reported would be \d+ bytes/,
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
