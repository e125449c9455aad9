import * as z from 'zod/mini';
import * as core from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';
import type { JsonBounds } from '../schema/json-bounds.js';
import { type ParseResult, parseJsonText, parseWith } from '../schema/parse.js';
import type { AllocationRequest } from './request.js';
import type { AllocationResponse } from './response.js';
import { defineWebhookSchemas, type WebhookZod } from './webhook-definition.js';
import { fastCheck, fastWebhookZod, UNSURE } from './webhook-fast.js';

/**
 * The webhook's contract (webhook-definition.ts, the one definition the main entry builds on zod
 * classic) built on zod/mini, for the `@dpskit/contracts/allocation` entry alone. Why: the entry
 * exists for a webhook's cold start (issue #13), and zod's classic API is the larger part of it:
 * importing the bundled entry took ~13.5 ms on the 2-core machine at load 2.9, of which ~7 ms was
 * zod classic itself (its bundle with one trivial schema) and ~6.5 ms building these schemas
 * (classic binds some forty methods to every schema instance); zod/mini with one trivial schema
 * takes ~2 ms. Same zod core, so the same checks, issues and English messages: webhook.test.ts
 * holds the built entry to the main entry's results.
 */

// zod classic registers English messages and the default memoizer on its first schema; zod/mini
// leaves both to the app. Same configuration as classic's, on the bundle's own copy of zod.
z.config(en());
z.config({ memoizer: z.memoizer() });

/**
 * zod/mini's `looseObject` parses with zod core's interpreted object parser; classic's objects use
 * the compiled one ($ZodObjectJIT, which builds a parser with `new Function` on its first parse
 * and falls back to the interpreted one where eval is not allowed). The webhook parses a request
 * per call: compiled, 1.5-2.5 us a request on the 2-core machine, interpreted 5-6.6 us. So the
 * objects here are built as classic builds its own: core's compiled object with the zod/mini
 * schema type on top, the same definition as zod/mini's `looseObject`.
 */
const initCompiledObject: (inst: z.ZodMiniObject, def: core.$ZodObjectDef) => void = core.$ZodObjectJIT.init;
const initMiniType: (inst: z.ZodMiniObject, def: core.$ZodObjectDef) => void = z.ZodMiniType.init;
const ZodMiniObjectJIT = core.$constructor('ZodMiniObjectJIT', (inst: z.ZodMiniObject, def: core.$ZodObjectDef) => {
  initCompiledObject(inst, def);
  initMiniType(inst, def);
});
function looseObject<T extends core.$ZodLooseShape>(shape: T): z.ZodMiniObject<T, core.$loose> {
  return new ZodMiniObjectJIT({ type: 'object', shape, catchall: z.unknown() }) as unknown as z.ZodMiniObject<
    T,
    core.$loose
  >;
}

// zod/mini's functions, with the compiled objects, as the definition's zod (typed as classic's:
// webhook-definition.ts says why). Only `safeParse` is called on the schemas it builds, which
// zod/mini's have with the same parameters and result. Named one by one, not the namespace
// spread: the bundle keeps only what is named.
const miniFunctions = {
  array: z.array,
  boolean: z.boolean,
  enum: z.enum,
  int: z.int,
  looseObject,
  minLength: z.minLength,
  nullish: z.nullish,
  number: z.number,
  optional: z.optional,
  record: z.record,
  string: z.string,
  superRefine: z.superRefine,
  unknown: z.unknown,
} satisfies Record<keyof WebhookZod, unknown>;
const webhookZod = miniFunctions as unknown as WebhookZod;

/**
 * The zod/mini schemas, built on the first request or answer that the fast checks below do not
 * vouch for: every valid one is answered by them (webhook-fast.ts), so a webhook builds zod only
 * to say what is wrong with an invalid one, in zod's words. Building the schemas was most of a
 * cold-started webhook's first request (issue #13).
 */
let zodSchemas: ReturnType<typeof defineWebhookSchemas> | undefined;
const schemas = (): ReturnType<typeof defineWebhookSchemas> => {
  zodSchemas ??= defineWebhookSchemas(webhookZod);
  return zodSchemas;
};
const fast = defineWebhookSchemas(fastWebhookZod);
const fastRequest = fastCheck(fast.allocationRequestSchema);
const fastResponse = fastCheck(fast.allocationResponseSchema);

export function parseAllocationRequest(input: unknown): ParseResult<AllocationRequest> {
  const value = fastRequest(input);
  if (value !== UNSURE) return { ok: true, value: value as AllocationRequest };
  return parseWith(schemas().allocationRequestSchema, input, 'allocation request');
}

export function parseAllocationRequestJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationRequest> {
  return parseJsonText(text, 'allocation request', bounds, parseAllocationRequest);
}

export function parseAllocationResponse(input: unknown): ParseResult<AllocationResponse> {
  const value = fastResponse(input);
  if (value !== UNSURE) return { ok: true, value: value as AllocationResponse };
  return parseWith(schemas().allocationResponseSchema, input, 'allocation response');
}

export function parseAllocationResponseJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationResponse> {
  return parseJsonText(text, 'allocation response', bounds, parseAllocationResponse);
}
