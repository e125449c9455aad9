import type * as z from 'zod';
import type { JsonBounds } from '../schema/json-bounds.js';
import { type ParseResult, parseJsonWith, parseWith } from '../schema/parse.js';
import { classicWebhookSchemas } from './webhook-classic.js';

/**
 * What the webhook answers with a 2xx status. `iotHubHostName` is nullable here on purpose: DPS
 * turns an empty or null hub into error 400208 rather than treating the body as malformed.
 * `payload` must be an object: DPS does not deliver anything else to the device.
 */
export const allocationResponseSchema = classicWebhookSchemas.allocationResponseSchema;
export type AllocationResponse = z.infer<typeof allocationResponseSchema>;

export function parseAllocationResponse(input: unknown): ParseResult<AllocationResponse> {
  return parseWith(allocationResponseSchema, input, 'allocation response');
}

export function parseAllocationResponseJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationResponse> {
  return parseJsonWith(allocationResponseSchema, text, 'allocation response', bounds);
}
