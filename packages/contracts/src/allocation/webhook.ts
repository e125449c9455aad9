/**
 * `@dpskit/contracts/allocation`: the custom allocation webhook's contract alone (parse the request
 * DPS sends, check the answer), for a webhook that must answer soon after its process starts. The
 * build (scripts/bundle-allocation.mjs) writes this entry as a small ES module and the schemas with
 * the parts of zod they use as one CommonJS script beside it (webhook-impl.cjs), which the entry
 * requires on its first parse: the main entry loads zod as about a hundred modules, which was about
 * half of the allocator host's cold start, and a host can load one script with a V8 code cache,
 * which Node 20 has none of for ES modules (issue #13). Same schemas (the main entry's one
 * definition, webhook-definition.ts, built on zod/mini: webhook-schemas.ts), same results and
 * messages as the main entry's functions of the same names. The schemas are not exported: they
 * are built on the script's own copy of zod, not to be mixed with the main entry's or an app's zod.
 * `ContractValidationError` and `decodeJson` are the main entry's own (not bundled; the script is
 * handed schema/parse.js), so `instanceof` holds across both entries.
 */

export type { EnrollmentGroup, IndividualEnrollment, InitialTwin, TwinCollection } from '../enrollment/enrollment.js';
export { DEFAULT_MAX_JSON_DEPTH, decodeJson, type JsonBounds, type JsonDecodeResult } from '../schema/json-bounds.js';
export { ContractValidationError, type FieldIssue, type ParseResult } from '../schema/parse.js';
export type { X509CertificateInfo } from '../x509/certificate-info.js';
export { WEBHOOK_API_VERSIONS, type WebhookApiVersion } from './api-versions.js';
export type { AllocationRequest, DevicePayload, DeviceRuntimeContext, X509RuntimeContext } from './request.js';
export type { AllocationResponse } from './response.js';
// The same parse functions as request.ts' and response.ts', on zod/mini schemas (see there why).
export {
  parseAllocationRequest,
  parseAllocationRequestJson,
  parseAllocationResponse,
  parseAllocationResponseJson,
} from './webhook-schemas.js';
