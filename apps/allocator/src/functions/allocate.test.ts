import { afterEach, describe, expect, it, vi } from 'vitest';
import { allocateHandler } from '../handler/allocate.js';
import { effectiveTrigger, isHttpFunctionDefinition } from '../registration/http-function.js';

describe('functions/allocate', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('calls app.http("allocate", ...) and exports the same options: POST /allocate, function auth level', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { allocate } = await import('./allocate.js');
    // Outside the Functions host app.http can only say that it skipped the registration.
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('Skipping call to register function "allocate"'));
    expect(isHttpFunctionDefinition(allocate)).toBe(true);
    expect(effectiveTrigger(allocate)).toEqual({
      name: 'allocate',
      route: 'allocate',
      methods: ['POST'],
      authLevel: 'function',
    });
    expect(allocate.options.handler).toBe(allocateHandler);
    // app.http adds the HTTP return binding to the very object it was given.
    expect(allocate.options.return).toMatchObject({ type: 'http' });
  });
});
