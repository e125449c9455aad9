import type * as z from 'zod';
import { classicWebhookSchemas } from '../allocation/webhook-classic.js';

// DPS adds fields to its records over time (for example `credentialPolicyName` in 2026-04-01),
// so every record schema is loose: unknown keys are kept, never rejected. The schemas are defined
// once, for this entry and `@dpskit/contracts/allocation`, in allocation/webhook-definition.ts.

export const allocationPolicySchema = classicWebhookSchemas.allocationPolicySchema;
export type AllocationPolicy = z.infer<typeof allocationPolicySchema>;

export const provisioningStatusSchema = classicWebhookSchemas.provisioningStatusSchema;
export type ProvisioningStatus = z.infer<typeof provisioningStatusSchema>;

export const attestationTypeSchema = classicWebhookSchemas.attestationTypeSchema;
export type AttestationType = z.infer<typeof attestationTypeSchema>;

export const twinCollectionSchema = classicWebhookSchemas.twinCollectionSchema;
export type TwinCollection = z.infer<typeof twinCollectionSchema>;

export const initialTwinSchema = classicWebhookSchemas.initialTwinSchema;
export type InitialTwin = z.infer<typeof initialTwinSchema>;

export const reprovisionPolicySchema = classicWebhookSchemas.reprovisionPolicySchema;
export type ReprovisionPolicy = z.infer<typeof reprovisionPolicySchema>;

/** DPS's default when an enrollment names no policy: "Reprovision and migrate data". */
export const DEFAULT_REPROVISION_POLICY: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true };

export const customAllocationDefinitionSchema = classicWebhookSchemas.customAllocationDefinitionSchema;
export type CustomAllocationDefinition = z.infer<typeof customAllocationDefinitionSchema>;

export const symmetricKeyAttestationSchema = classicWebhookSchemas.symmetricKeyAttestationSchema;

/**
 * One certificate of an X.509 attestation: the service takes `certificate` (PEM or base64 DER) and
 * answers with `info` only; a client may send an answer back with `info` and no `certificate`.
 */
export const x509CertificateWithInfoSchema = classicWebhookSchemas.x509CertificateWithInfoSchema;
export type X509CertificateWithInfo = z.infer<typeof x509CertificateWithInfoSchema>;

export const x509CertificatesSchema = classicWebhookSchemas.x509CertificatesSchema;
export type X509Certificates = z.infer<typeof x509CertificatesSchema>;

/** Names of CA certificates uploaded to (and verified by) the DPS instance. */
export const x509CaReferencesSchema = classicWebhookSchemas.x509CaReferencesSchema;
export type X509CaReferences = z.infer<typeof x509CaReferencesSchema>;

/**
 * `X509Attestation`: individual enrollments name the device's own certificate
 * (`clientCertificates`); enrollment groups a root or intermediate CA certificate that signed the
 * devices' chains (`signingCertificates`) or a CA certificate of the instance (`caReferences`).
 */
export const x509AttestationSchema = classicWebhookSchemas.x509AttestationSchema;
export type X509Attestation = z.infer<typeof x509AttestationSchema>;

export const attestationMechanismSchema = classicWebhookSchemas.attestationMechanismSchema;
export type AttestationMechanism = z.infer<typeof attestationMechanismSchema>;

export const enrollmentGroupSchema = classicWebhookSchemas.enrollmentGroupSchema;
export type EnrollmentGroup = z.infer<typeof enrollmentGroupSchema>;

export const individualEnrollmentSchema = classicWebhookSchemas.individualEnrollmentSchema;
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
