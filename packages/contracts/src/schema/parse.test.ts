import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { TOASTER_REQUEST_2021_10_01 } from '../fixtures/tutorial.js';
import { parseJsonWith, parseWith } from './parse.js';

// A schema's first parse is zod's interpreted one (jitless), later ones its compiled one: same answers.
describe('parseWith: the first parse of a schema and the later ones', () => {
  const schema = () =>
    z.looseObject({
      id: z.string(),
      hubs: z.array(z.string()),
      twin: z.looseObject({ tags: z.record(z.string(), z.unknown()).optional() }).optional(),
    });

  it.each([
    ['valid', { id: 'a', hubs: ['h'], twin: { tags: { x: 1 } }, extra: true }],
    ['missing fields', { hubs: [1] }],
    ['wrong nested types', { id: 5, hubs: 'h', twin: { tags: 3 } }],
    ['not an object', 'text'],
  ])('%s: the same result on the first, second and tenth parse', (_name, input) => {
    const s = schema();
    const results = Array.from({ length: 10 }, () => parseWith(s, input, 'thing'));
    for (const result of results) expect(result).toEqual(results[0]);
    expect(JSON.stringify(results.at(-1))).toBe(JSON.stringify(results[0]));
  });

  it('the first parse of one schema does not make another schema’s first parse a later one', () => {
    const [a, b] = [schema(), schema()];
    const first = parseWith(a, { id: 1 }, 'thing');
    expect(parseWith(b, { id: 1 }, 'thing')).toEqual(first);
    expect(parseWith(a, { id: 1 }, 'thing')).toEqual(first);
    expect(first.ok ? [] : first.error.issues.map((i) => i.path)).toEqual(['id', 'hubs']);
  });

  it('keeps unknown fields on both paths (the tutorial request, parsed twice from JSON)', () => {
    const s = schema().extend({ deviceRuntimeContext: z.looseObject({ registrationId: z.string() }) });
    const body = JSON.stringify({ ...JSON.parse(TOASTER_REQUEST_2021_10_01), id: 'x', hubs: [] });
    const first = parseJsonWith(s, body, 'request');
    const second = parseJsonWith(s, body, 'request');
    expect(second).toEqual(first);
    expect(first.ok && first.value.enrollmentGroup).toEqual(JSON.parse(TOASTER_REQUEST_2021_10_01).enrollmentGroup);
  });
});
