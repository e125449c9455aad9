import type * as z from 'zod';
import type { JsonBounds } from '../schema/json-bounds.js';
import { type ParseResult, parseJsonWith, parseWith } from '../schema/parse.js';
import { classicWebhookSchemas } from './webhook-classic.js';

export { WEBHOOK_API_VERSIONS, type WebhookApiVersion } from './api-versions.js';

/** The custom JSON a device sends with `setProvisioningPayload()`: DPS only forwards objects. */
export const devicePayloadSchema = classicWebhookSchemas.devicePayloadSchema;
export type DevicePayload = z.infer<typeof devicePayloadSchema>;

/**
 * `deviceRuntimeContext.x509` for a device that attested with an X.509 certificate. DPS documents
 * only that it "contains certificate details"; the shape is dpskit's choice (loose, so that whatever
 * else DPS sends passes):
 * - `clientCertificate`: the device's own (leaf) certificate, base64 DER, as one known third-party
 *   webhook reads it (`Convert.FromBase64String` → `X509Certificate2`);
 * - `certificateInfo`: the same certificate described the way the service API describes uploaded
 *   certificates (subject and issuer names, thumbprints, validity, serial number);
 * - `certificateChain`: the further certificates the device presented, base64 DER, the leaf's
 *   issuer first (absent when it presented only its own);
 * - `signingCertificateInfo`: for enrollment groups, the group's root or intermediate certificate
 *   the chain was verified against.
 */
export const x509RuntimeContextSchema = classicWebhookSchemas.x509RuntimeContextSchema;
export type X509RuntimeContext = z.infer<typeof x509RuntimeContextSchema>;

export const deviceRuntimeContextSchema = classicWebhookSchemas.deviceRuntimeContextSchema;
export type DeviceRuntimeContext = z.infer<typeof deviceRuntimeContextSchema>;

export const allocationRequestSchema = classicWebhookSchemas.allocationRequestSchema;
export type AllocationRequest = z.infer<typeof allocationRequestSchema>;

export function parseAllocationRequest(input: unknown): ParseResult<AllocationRequest> {
  return parseWith(allocationRequestSchema, input, 'allocation request');
}

export function parseAllocationRequestJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationRequest> {
  return parseJsonWith(allocationRequestSchema, text, 'allocation request', bounds);
}
