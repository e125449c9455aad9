import * as z from 'zod';
import { devicePayloadSchema } from '../allocation/request.js';
import type { JsonBounds } from '../schema/json-bounds.js';
import { type ParseResult, parseJsonWith, parseWith } from '../schema/parse.js';
import { x509CertificateInfoSchema } from '../x509/certificate-info.js';

export const registrationStatusSchema = z.enum(['unassigned', 'assigning', 'assigned', 'failed', 'disabled']);
export type RegistrationStatus = z.infer<typeof registrationStatusSchema>;

export const assignedSubstatusSchema = z.enum([
  'initialAssignment',
  'deviceDataMigrated',
  'deviceDataReset',
  'reprovisionedToInitialAssignment',
]);
export type AssignedSubstatus = z.infer<typeof assignedSubstatusSchema>;

/** The first device API version that carries certificate issuance (`csr` → `issuedCertificateChain`). */
export const CERTIFICATE_ISSUANCE_API_VERSION = '2025-07-01-preview';

/**
 * Body of a device's register request: `PUT .../register` or `$dps/registrations/PUT/iotdps-register/`.
 * `registrationId` is optional, as in the REST spec: the device is already named by the URL or
 * the MQTT username, and the newest Azure IoT C SDK sends no `registrationId` in the body.
 * `csr` (api-version `2025-07-01-preview` and later): a base64 DER PKCS#10 certificate signing
 * request, no PEM armour, whose subject CN is the registration id; DPS answers the assignment with
 * `issuedCertificateChain`.
 */
export const deviceRegistrationSchema = z.looseObject({
  registrationId: z.string().min(1).optional(),
  payload: devicePayloadSchema.optional(),
  tpm: z.looseObject({ endorsementKey: z.string(), storageRootKey: z.string().optional() }).optional(),
  csr: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64 DER (PKCS#10) without PEM headers')
    .optional(),
});
export type DeviceRegistration = z.infer<typeof deviceRegistrationSchema>;

export function parseDeviceRegistration(input: unknown): ParseResult<DeviceRegistration> {
  return parseWith(deviceRegistrationSchema, input, 'device registration');
}

/**
 * `{"registrationId":"…"}` with nothing in the id to unescape (every code unit from U+0020 up but
 * `"` and `\`): the body every SDK sends when the device has no payload
 * (`JSON.stringify({ registrationId })`).
 */
const ID_ONLY_BODY = /^\{"registrationId":"([\x20\x21\x23-\x5b\x5d-\uffff]+)"\}$/;

export function parseDeviceRegistrationJson(text: string, bounds: JsonBounds = {}): ParseResult<DeviceRegistration> {
  // The usual body read by a pattern: the same value the JSON parse and the schema give it (a
  // non-empty string id, one level deep), without them (~1 µs of a registration's path; the
  // schema's first parse, jitless, is then the first body with more than an id).
  if ((bounds.maxDepth ?? 1) >= 1) {
    const idOnly = ID_ONLY_BODY.exec(text);
    if (idOnly) return { ok: true, value: { registrationId: idOnly[1] as string } };
  }
  return parseJsonWith(deviceRegistrationSchema, text, 'device registration', bounds);
}

/** `X509RegistrationResult` (REST spec): a real assigned answer carries `{"enrollmentGroupId": …}`. */
export const x509RegistrationResultSchema = z.looseObject({
  certificateInfo: x509CertificateInfoSchema.optional(),
  enrollmentGroupId: z.string().optional(),
  signingCertificateInfo: x509CertificateInfoSchema.optional(),
});
export type X509RegistrationResult = z.infer<typeof x509RegistrationResultSchema>;

export const deviceRegistrationResultSchema = z.looseObject({
  registrationId: z.string(),
  createdDateTimeUtc: z.string().optional(),
  assignedHub: z.string().optional(),
  deviceId: z.string().optional(),
  status: registrationStatusSchema,
  substatus: assignedSubstatusSchema.optional(),
  errorCode: z.number().int().optional(),
  errorMessage: z.string().optional(),
  lastUpdatedDateTimeUtc: z.string().optional(),
  etag: z.string().optional(),
  payload: devicePayloadSchema.optional(),
  symmetricKey: z.looseObject({ enrollmentGroupId: z.string().optional() }).optional(),
  x509: x509RegistrationResultSchema.optional(),
  tpm: z.record(z.string(), z.unknown()).optional(),
  /**
   * Certificate issuance: the issued certificate first, then its issuers up to the root, each base64
   * DER. Only in the answers to a register request that carried `csr`, never in a status lookup.
   */
  issuedCertificateChain: z.array(z.string()).optional(),
});
export type DeviceRegistrationResult = z.infer<typeof deviceRegistrationResultSchema>;

export const registrationOperationStatusSchema = z.looseObject({
  operationId: z.string(),
  status: registrationStatusSchema,
  registrationState: deviceRegistrationResultSchema.optional(),
});
export type RegistrationOperationStatus = z.infer<typeof registrationOperationStatusSchema>;

export function parseRegistrationOperationStatus(input: unknown): ParseResult<RegistrationOperationStatus> {
  return parseWith(registrationOperationStatusSchema, input, 'registration operation status');
}

export function parseRegistrationOperationStatusJson(text: string): ParseResult<RegistrationOperationStatus> {
  return parseJsonWith(registrationOperationStatusSchema, text, 'registration operation status');
}
