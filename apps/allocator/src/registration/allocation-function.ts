import { functionsLibrary as functions } from '../functions-library.js';
import { createAllocateHandler } from '../handler/allocate.js';
import type { AllocationPolicy } from '../policy/policy.js';
import { type AuthLevel, type HttpFunctionDefinition, httpFunction } from './http-function.js';

export interface AllocationFunctionOptions {
  /** Decides each device: the only code a custom allocation webhook needs. */
  policy: AllocationPolicy;
  /** Route under host.json's prefix; default the function name (`/api/<name>`). */
  route?: string;
  /**
   * Default `function`: callers need the function key (`?code=`), which is the only
   * authentication DPS supports for webhooks. `anonymous` lets anyone call it.
   */
  authLevel?: AuthLevel;
}

/**
 * Registers a DPS custom allocation webhook in a Functions (Node.js v4 model) app, in one call:
 * `app.http(name, { methods: ['POST'], authLevel: 'function', route: name, handler })` with the
 * handler that parses and validates the request with `@dpskit/contracts`, asks `policy`, logs
 * what the tutorial's function logs and answers as DPS expects (see createAllocateHandler).
 * Call it at the top level of a module that package.json `main` names, e.g. `src/functions/allocate.ts`.
 * Returns the options it registered (for tests and for `startAllocatorHost`).
 */
export function registerAllocationFunction(name: string, options: AllocationFunctionOptions): HttpFunctionDefinition {
  if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,127}$/.test(name)) {
    // The Functions host's rule for function names.
    throw new TypeError(
      `Invalid function name ${JSON.stringify(name)}: start with a letter; letters, digits, "_" and "-" only; at most 128 characters.`,
    );
  }
  if (typeof options?.policy !== 'function') {
    throw new TypeError('registerAllocationFunction: options.policy must be a function (request) => decision.');
  }
  const definition = httpFunction(name, {
    methods: ['POST'],
    authLevel: options.authLevel ?? 'function',
    route: options.route ?? name,
    handler: createAllocateHandler(options.policy),
  });
  functions.app.http(definition.name, definition.options);
  return definition;
}
