import * as z from 'zod/mini';
import * as core from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';
import type { JsonBounds } from '../schema/json-bounds.js';
import { type ParseResult, parseJsonWith, parseWith } from '../schema/parse.js';
import type { AllocationRequest } from './request.js';
import type { AllocationResponse } from './response.js';

/**
 * The webhook's request and response schemas of request.ts and response.ts (with enrollment.ts and
 * certificate-info.ts beneath them), written again on zod/mini for the `@dpskit/contracts/allocation`
 * entry alone. Why: the entry exists for a webhook's cold start (issue #13), and zod's classic API
 * is the larger part of it: importing the bundled entry took ~13.5 ms on the 2-core machine at load
 * 2.9, of which ~7 ms was zod classic itself (its bundle with one trivial schema) and ~6.5 ms
 * building these schemas (classic binds some forty methods to every schema instance); zod/mini
 * with one trivial schema takes ~2 ms. Same zod core, so the same checks, issues and English
 * messages: webhook.test.ts holds the built entry to the main entry's results, and the types
 * below must equal the main entry's. The main entry keeps its classic schemas (apps compose
 * them); a change to one of those schemas must be made here too, which that test catches.
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

const twinCollection = z.record(z.string(), z.unknown());
const initialTwin = looseObject({
  tags: z.optional(twinCollection),
  properties: z.optional(looseObject({ desired: z.optional(twinCollection) })),
});
const x509CertificateInfo = looseObject({
  subjectName: z.string(),
  sha1Thumbprint: z.string(),
  sha256Thumbprint: z.string(),
  issuerName: z.string(),
  notBeforeUtc: z.string(),
  notAfterUtc: z.string(),
  serialNumber: z.string(),
  version: z.number().check(z.int()),
});
const x509CertificateWithInfo = looseObject({
  certificate: z.nullish(z.string()),
  info: z.nullish(x509CertificateInfo),
});
const x509Certificates = looseObject({
  primary: z.nullish(x509CertificateWithInfo),
  secondary: z.nullish(x509CertificateWithInfo),
});
const tpmAttestation = looseObject({ endorsementKey: z.string(), storageRootKey: z.optional(z.string()) });
const attestationMechanism = looseObject({
  type: z.enum(['none', 'tpm', 'x509', 'symmetricKey']),
  symmetricKey: z.optional(looseObject({ primaryKey: z.optional(z.string()), secondaryKey: z.optional(z.string()) })),
  x509: z.optional(
    looseObject({
      clientCertificates: z.nullish(x509Certificates),
      signingCertificates: z.nullish(x509Certificates),
      caReferences: z.nullish(looseObject({ primary: z.nullish(z.string()), secondary: z.nullish(z.string()) })),
    }),
  ),
  tpm: z.optional(tpmAttestation),
});
const enrollmentCommonShape = {
  attestation: attestationMechanism,
  capabilities: z.optional(looseObject({ iotEdge: z.boolean() })),
  iotHubHostName: z.optional(z.string()),
  initialTwin: z.nullish(initialTwin),
  etag: z.optional(z.string()),
  provisioningStatus: z.optional(z.enum(['enabled', 'disabled'])),
  reprovisionPolicy: z.optional(looseObject({ updateHubAssignment: z.boolean(), migrateDeviceData: z.boolean() })),
  createdDateTimeUtc: z.optional(z.string()),
  lastUpdatedDateTimeUtc: z.optional(z.string()),
  allocationPolicy: z.optional(z.enum(['hashed', 'geoLatency', 'static', 'custom'])),
  iotHubs: z.optional(z.array(z.string())),
  customAllocationDefinition: z.optional(
    looseObject({ webhookUrl: z.string().check(z.minLength(1)), apiVersion: z.string().check(z.minLength(1)) }),
  ),
};
const enrollmentGroup = looseObject({ enrollmentGroupId: z.string().check(z.minLength(1)), ...enrollmentCommonShape });
const individualEnrollment = looseObject({
  registrationId: z.string().check(z.minLength(1)),
  deviceId: z.optional(z.string()),
  optionalDeviceInformation: z.optional(twinCollection),
  registrationState: z.optional(z.record(z.string(), z.unknown())),
  ...enrollmentCommonShape,
});
const devicePayload = z.record(z.string(), z.unknown());
const deviceRuntimeContext = looseObject({
  registrationId: z.string(),
  currentIotHubHostName: z.optional(z.string()),
  currentDeviceId: z.optional(z.string()),
  symmetricKey: z.optional(z.record(z.string(), z.unknown())),
  x509: z.optional(
    looseObject({
      clientCertificate: z.optional(z.string()),
      certificateInfo: z.optional(x509CertificateInfo),
      certificateChain: z.optional(z.array(z.string())),
      signingCertificateInfo: z.optional(x509CertificateInfo),
    }),
  ),
  tpm: z.optional(tpmAttestation),
  payload: z.optional(devicePayload),
});

const allocationRequest = z
  .looseObject({
    enrollmentGroup: z.optional(enrollmentGroup),
    individualEnrollment: z.optional(individualEnrollment),
    deviceRuntimeContext,
    linkedHubs: z.array(z.string()),
  })
  .check(
    z.superRefine((request, ctx) => {
      const both = request.enrollmentGroup !== undefined && request.individualEnrollment !== undefined;
      const neither = request.enrollmentGroup === undefined && request.individualEnrollment === undefined;
      if (both || neither) {
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: `exactly one of enrollmentGroup or individualEnrollment is required, ${both ? 'both were given' : 'neither was given'}`,
        });
      }
    }),
  );

const allocationResponse = looseObject({
  iotHubHostName: z.nullish(z.string()),
  initialTwin: z.nullish(initialTwin),
  payload: z.nullish(devicePayload),
});

// The types the main entry's classic schemas infer, and these must infer, are the same.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const requestTypeIsSame: Same<z.output<typeof allocationRequest>, AllocationRequest> = true;
const responseTypeIsSame: Same<z.output<typeof allocationResponse>, AllocationResponse> = true;
void requestTypeIsSame;
void responseTypeIsSame;

// parseWith is typed for classic schemas; it calls nothing but safeParse, which zod/mini schemas
// have with the same parameters and result.
type ClassicSchema<T> = Parameters<typeof parseWith<import('zod').ZodType<T>>>[0];
const requestSchema = allocationRequest as unknown as ClassicSchema<AllocationRequest>;
const responseSchema = allocationResponse as unknown as ClassicSchema<AllocationResponse>;

export function parseAllocationRequest(input: unknown): ParseResult<AllocationRequest> {
  return parseWith(requestSchema, input, 'allocation request');
}

export function parseAllocationRequestJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationRequest> {
  return parseJsonWith(requestSchema, text, 'allocation request', bounds);
}

export function parseAllocationResponse(input: unknown): ParseResult<AllocationResponse> {
  return parseWith(responseSchema, input, 'allocation response');
}

export function parseAllocationResponseJson(text: string, bounds: JsonBounds = {}): ParseResult<AllocationResponse> {
  return parseJsonWith(responseSchema, text, 'allocation response', bounds);
}
