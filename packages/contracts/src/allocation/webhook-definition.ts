import type * as classic from 'zod';

// DPS adds fields to its records over time (for example `credentialPolicyName` in 2026-04-01),
// so every record schema is loose: unknown keys are kept, never rejected.

/**
 * The zod functions the webhook's schemas are built with: zod classic and zod/mini both have each
 * of them, with the same definitions, checks and messages (`z.optional(s)` is what classic's
 * `s.optional()` calls, `z.string().check(z.minLength(1))` what `.min(1)` does). Typed as classic's,
 * so that the main entry's schemas keep their classic types (`.extend()`, `.optional()`, ... for
 * the apps that compose them); zod/mini's namespace is handed in with this type by
 * `webhook-schemas.ts`, which only ever calls `safeParse` on what it gets. So this file must use no
 * classic-only method (TypeScript cannot catch one here; webhook.test.ts runs the built
 * `@dpskit/contracts/allocation` entry, which would throw building its schemas).
 */
export type WebhookZod = Pick<
  typeof classic,
  | 'array'
  | 'boolean'
  | 'enum'
  | 'int'
  | 'looseObject'
  | 'minLength'
  | 'nullish'
  | 'number'
  | 'optional'
  | 'record'
  | 'string'
  | 'superRefine'
  | 'unknown'
>;

/**
 * The custom allocation webhook's contract, defined once for both entries: the main entry builds it
 * on zod classic (enrollment.ts, certificate-info.ts, request.ts and response.ts export these
 * schemas), `@dpskit/contracts/allocation` on zod/mini (webhook-schemas.ts says why: a webhook's
 * cold start, issue #13). Same schemas, so the same results, issues and messages from both. What
 * each schema is: the main entry's file that exports it.
 */
export function defineWebhookSchemas(z: WebhookZod) {
  const allocationPolicySchema = z.enum(['hashed', 'geoLatency', 'static', 'custom']);
  const provisioningStatusSchema = z.enum(['enabled', 'disabled']);
  const attestationTypeSchema = z.enum(['none', 'tpm', 'x509', 'symmetricKey']);
  const twinCollectionSchema = z.record(z.string(), z.unknown());
  const initialTwinSchema = z.looseObject({
    tags: z.optional(twinCollectionSchema),
    properties: z.optional(z.looseObject({ desired: z.optional(twinCollectionSchema) })),
  });
  const reprovisionPolicySchema = z.looseObject({
    updateHubAssignment: z.boolean(),
    migrateDeviceData: z.boolean(),
  });
  const customAllocationDefinitionSchema = z.looseObject({
    webhookUrl: z.string().check(z.minLength(1)),
    apiVersion: z.string().check(z.minLength(1)),
  });
  const symmetricKeyAttestationSchema = z.looseObject({
    primaryKey: z.optional(z.string()),
    secondaryKey: z.optional(z.string()),
  });

  const x509CertificateInfoSchema = z.looseObject({
    subjectName: z.string(),
    sha1Thumbprint: z.string(),
    sha256Thumbprint: z.string(),
    issuerName: z.string(),
    notBeforeUtc: z.string(),
    notAfterUtc: z.string(),
    serialNumber: z.string(),
    version: z.number().check(z.int()),
  });

  const x509CertificateWithInfoSchema = z.looseObject({
    certificate: z.nullish(z.string()),
    info: z.nullish(x509CertificateInfoSchema),
  });
  const x509CertificatesSchema = z.looseObject({
    primary: z.nullish(x509CertificateWithInfoSchema),
    secondary: z.nullish(x509CertificateWithInfoSchema),
  });
  const x509CaReferencesSchema = z.looseObject({
    primary: z.nullish(z.string()),
    secondary: z.nullish(z.string()),
  });

  const x509AttestationSchema = z.looseObject({
    clientCertificates: z.nullish(x509CertificatesSchema),
    signingCertificates: z.nullish(x509CertificatesSchema),
    caReferences: z.nullish(x509CaReferencesSchema),
  });
  const attestationMechanismSchema = z.looseObject({
    type: attestationTypeSchema,
    symmetricKey: z.optional(symmetricKeyAttestationSchema),
    x509: z.optional(x509AttestationSchema),
    tpm: z.optional(z.looseObject({ endorsementKey: z.string(), storageRootKey: z.optional(z.string()) })),
  });

  const enrollmentCommonShape = {
    attestation: attestationMechanismSchema,
    capabilities: z.optional(z.looseObject({ iotEdge: z.boolean() })),
    iotHubHostName: z.optional(z.string()),
    initialTwin: z.nullish(initialTwinSchema),
    etag: z.optional(z.string()),
    provisioningStatus: z.optional(provisioningStatusSchema),
    reprovisionPolicy: z.optional(reprovisionPolicySchema),
    createdDateTimeUtc: z.optional(z.string()),
    lastUpdatedDateTimeUtc: z.optional(z.string()),
    allocationPolicy: z.optional(allocationPolicySchema),
    iotHubs: z.optional(z.array(z.string())),
    customAllocationDefinition: z.optional(customAllocationDefinitionSchema),
  };
  const enrollmentGroupSchema = z.looseObject({
    enrollmentGroupId: z.string().check(z.minLength(1)),
    ...enrollmentCommonShape,
  });
  const individualEnrollmentSchema = z.looseObject({
    registrationId: z.string().check(z.minLength(1)),
    deviceId: z.optional(z.string()),
    optionalDeviceInformation: z.optional(twinCollectionSchema),
    registrationState: z.optional(z.record(z.string(), z.unknown())),
    ...enrollmentCommonShape,
  });

  const devicePayloadSchema = z.record(z.string(), z.unknown());

  const x509RuntimeContextSchema = z.looseObject({
    clientCertificate: z.optional(z.string()),
    certificateInfo: z.optional(x509CertificateInfoSchema),
    certificateChain: z.optional(z.array(z.string())),
    signingCertificateInfo: z.optional(x509CertificateInfoSchema),
  });
  const deviceRuntimeContextSchema = z.looseObject({
    registrationId: z.string(),
    currentIotHubHostName: z.optional(z.string()),
    currentDeviceId: z.optional(z.string()),
    symmetricKey: z.optional(z.record(z.string(), z.unknown())),
    x509: z.optional(x509RuntimeContextSchema),
    tpm: z.optional(z.looseObject({ endorsementKey: z.string(), storageRootKey: z.optional(z.string()) })),
    payload: z.optional(devicePayloadSchema),
  });
  const allocationRequestSchema = z
    .looseObject({
      enrollmentGroup: z.optional(enrollmentGroupSchema),
      individualEnrollment: z.optional(individualEnrollmentSchema),
      deviceRuntimeContext: deviceRuntimeContextSchema,
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

  const allocationResponseSchema = z.looseObject({
    iotHubHostName: z.nullish(z.string()),
    initialTwin: z.nullish(initialTwinSchema),
    payload: z.nullish(devicePayloadSchema),
  });

  return {
    allocationPolicySchema,
    provisioningStatusSchema,
    attestationTypeSchema,
    twinCollectionSchema,
    initialTwinSchema,
    reprovisionPolicySchema,
    customAllocationDefinitionSchema,
    symmetricKeyAttestationSchema,
    x509CertificateInfoSchema,
    x509CertificateWithInfoSchema,
    x509CertificatesSchema,
    x509CaReferencesSchema,
    x509AttestationSchema,
    attestationMechanismSchema,
    enrollmentGroupSchema,
    individualEnrollmentSchema,
    devicePayloadSchema,
    x509RuntimeContextSchema,
    deviceRuntimeContextSchema,
    allocationRequestSchema,
    allocationResponseSchema,
  };
}
