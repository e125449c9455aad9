import * as z from 'zod';
import { x509CertificateInfoSchema } from '../x509/certificate-info.js';

// DPS adds fields to its records over time (for example `credentialPolicyName` in 2026-04-01),
// so every record schema is loose: unknown keys are kept, never rejected.

export const allocationPolicySchema = z.enum(['hashed', 'geoLatency', 'static', 'custom']);
export type AllocationPolicy = z.infer<typeof allocationPolicySchema>;

export const provisioningStatusSchema = z.enum(['enabled', 'disabled']);
export type ProvisioningStatus = z.infer<typeof provisioningStatusSchema>;

export const attestationTypeSchema = z.enum(['none', 'tpm', 'x509', 'symmetricKey']);
export type AttestationType = z.infer<typeof attestationTypeSchema>;

export const twinCollectionSchema = z.record(z.string(), z.unknown());
export type TwinCollection = z.infer<typeof twinCollectionSchema>;

export const initialTwinSchema = z.looseObject({
  tags: twinCollectionSchema.optional(),
  properties: z.looseObject({ desired: twinCollectionSchema.optional() }).optional(),
});
export type InitialTwin = z.infer<typeof initialTwinSchema>;

export const reprovisionPolicySchema = z.looseObject({
  updateHubAssignment: z.boolean(),
  migrateDeviceData: z.boolean(),
});
export type ReprovisionPolicy = z.infer<typeof reprovisionPolicySchema>;

/** DPS's default when an enrollment names no policy: "Reprovision and migrate data". */
export const DEFAULT_REPROVISION_POLICY: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true };

export const customAllocationDefinitionSchema = z.looseObject({
  webhookUrl: z.string().min(1),
  apiVersion: z.string().min(1),
});
export type CustomAllocationDefinition = z.infer<typeof customAllocationDefinitionSchema>;

export const symmetricKeyAttestationSchema = z.looseObject({
  primaryKey: z.string().optional(),
  secondaryKey: z.string().optional(),
});

/**
 * One certificate of an X.509 attestation: the service takes `certificate` (PEM or base64 DER) and
 * answers with `info` only; a client may send an answer back with `info` and no `certificate`.
 */
export const x509CertificateWithInfoSchema = z.looseObject({
  certificate: z.string().nullish(),
  info: x509CertificateInfoSchema.nullish(),
});
export type X509CertificateWithInfo = z.infer<typeof x509CertificateWithInfoSchema>;

export const x509CertificatesSchema = z.looseObject({
  primary: x509CertificateWithInfoSchema.nullish(),
  secondary: x509CertificateWithInfoSchema.nullish(),
});
export type X509Certificates = z.infer<typeof x509CertificatesSchema>;

/** Names of CA certificates uploaded to (and verified by) the DPS instance. */
export const x509CaReferencesSchema = z.looseObject({
  primary: z.string().nullish(),
  secondary: z.string().nullish(),
});
export type X509CaReferences = z.infer<typeof x509CaReferencesSchema>;

/**
 * `X509Attestation`: individual enrollments name the device's own certificate
 * (`clientCertificates`); enrollment groups a root or intermediate CA certificate that signed the
 * devices' chains (`signingCertificates`) or a CA certificate of the instance (`caReferences`).
 */
export const x509AttestationSchema = z.looseObject({
  clientCertificates: x509CertificatesSchema.nullish(),
  signingCertificates: x509CertificatesSchema.nullish(),
  caReferences: x509CaReferencesSchema.nullish(),
});
export type X509Attestation = z.infer<typeof x509AttestationSchema>;

export const attestationMechanismSchema = z.looseObject({
  type: attestationTypeSchema,
  symmetricKey: symmetricKeyAttestationSchema.optional(),
  x509: x509AttestationSchema.optional(),
  tpm: z.looseObject({ endorsementKey: z.string(), storageRootKey: z.string().optional() }).optional(),
});
export type AttestationMechanism = z.infer<typeof attestationMechanismSchema>;

const enrollmentCommonShape = {
  attestation: attestationMechanismSchema,
  capabilities: z.looseObject({ iotEdge: z.boolean() }).optional(),
  iotHubHostName: z.string().optional(),
  initialTwin: initialTwinSchema.nullish(),
  etag: z.string().optional(),
  provisioningStatus: provisioningStatusSchema.optional(),
  reprovisionPolicy: reprovisionPolicySchema.optional(),
  createdDateTimeUtc: z.string().optional(),
  lastUpdatedDateTimeUtc: z.string().optional(),
  allocationPolicy: allocationPolicySchema.optional(),
  iotHubs: z.array(z.string()).optional(),
  customAllocationDefinition: customAllocationDefinitionSchema.optional(),
};

export const enrollmentGroupSchema = z.looseObject({
  enrollmentGroupId: z.string().min(1),
  ...enrollmentCommonShape,
});
export type EnrollmentGroup = z.infer<typeof enrollmentGroupSchema>;

export const individualEnrollmentSchema = z.looseObject({
  registrationId: z.string().min(1),
  deviceId: z.string().optional(),
  optionalDeviceInformation: twinCollectionSchema.optional(),
  registrationState: z.record(z.string(), z.unknown()).optional(),
  ...enrollmentCommonShape,
});
export type IndividualEnrollment = z.infer<typeof individualEnrollmentSchema>;

/**
 * The enrollment as DPS embeds it in a webhook request: keys removed (attestation keeps only its
 * type) and the webhook URL's query masked as `?****`, exactly as in the tutorial's logged bodies.
 */
export function toWebhookView<E extends EnrollmentGroup | IndividualEnrollment>(enrollment: E): E {
  const view = { ...enrollment, attestation: { type: enrollment.attestation.type } };
  const definition = enrollment.customAllocationDefinition;
  if (definition)
    view.customAllocationDefinition = { ...definition, webhookUrl: maskWebhookUrl(definition.webhookUrl) };
  return view;
}

export function maskWebhookUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?****`;
}
