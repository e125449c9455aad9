import { describe, expect, it } from 'vitest';
import { loadFunctionApp } from '../local-host/registry.js';
import { effectiveTrigger, isHttpFunctionDefinition } from '../registration/http-function.js';

describe('functions/allocate', () => {
  it('registers "allocate" with app.http: POST /allocate, function auth level, and exports the same options', async () => {
    const app = await loadFunctionApp();
    const { allocate } = await import('./allocate.js');
    expect(isHttpFunctionDefinition(allocate)).toBe(true);
    expect(app.definitions.map(effectiveTrigger)).toEqual([
      { name: 'allocate', route: 'allocate', methods: ['POST'], authLevel: 'function' },
    ]);
    expect(effectiveTrigger(allocate)).toEqual(effectiveTrigger(app.definitions[0]!));
    // What the host serves is the very handler the module registered.
    expect(app.definitions[0]!.options.handler).toBe(allocate.options.handler);
  });
});
