import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { formatDpsErrorTimestamp } from '../dps-format.js';
import { type ParseResult, parseJsonWith } from '../schema/parse.js';

/**
 * DPS's six-digit error codes are `HTTP status * 1000 + n` (azure-sdk-for-c derives the status as
 * `errorCode / 1000`). Codes marked "observed" are what the real service sends; the others are
 * dpskit's choices for cases DPS does not document, kept inside the same status family so that
 * SDKs classify them the same way.
 */
export const DpsErrorCode = {
  /** observed: the webhook answered a non-2xx status below 429 other than 401. */
  CustomAllocationFailed: 400207,
  /** documented: the webhook answered 2xx with an empty or null `iotHubHostName`. */
  CustomAllocationIotHubNotSpecified: 400208,
  /** documented: the webhook answered 401. */
  CustomAllocationUnauthorizedAccess: 400209,
  /** dpskit: the register request body is not a valid DeviceRegistration. */
  InvalidRequestBody: 400001,
  /** dpskit: the registration id is malformed or does not match the URL/topic. */
  InvalidRegistrationId: 400002,
  /** observed: device authentication failed over HTTPS (azure-iot-sdk-node#721). */
  Unauthorized: 401002,
  /**
   * observed: device authentication (SAS) failed over MQTT: the CONNECT is accepted and the
   * register publish is answered on `$dps/registrations/res/401/?$rid=…` with this code
   * (MicrosoftDocs/azure-docs#43157).
   */
  MqttUnauthorized: 401000,
  /** dpskit: the operation id in a poll is unknown for this registration. */
  OperationNotFound: 404006,
  /** dpskit: a route or topic the device API does not serve. */
  NotFound: 404001,
  /** dpskit: a device API resource asked for with the wrong HTTP method. */
  MethodNotAllowed: 405001,
  /** dpskit: the request did not arrive completely within the server's time limit. */
  RequestTimeout: 408001,
  /** dpskit: the request's header fields are larger than the server reads. */
  RequestHeaderFieldsTooLarge: 431001,
  /** observed: throttled. */
  Throttled: 429001,
  /**
   * dpskit: a built-in allocation policy (hashed, static, geoLatency) found no hub it may assign:
   * no candidate hubs, or a static enrollment that does not name exactly one.
   */
  AllocationNoIotHub: 400210,
  /** dpskit: an unexpected server error. */
  InternalServerError: 500001,
  // The service (enrollment) API. 400004 and 401002 are observed; the others are dpskit's
  // choices inside the HTTP status the service documents for the case.
  /** observed (MicrosoftDocs/azure-docs#17690): the service API refused an argument or enrollment. */
  ArgumentInvalid: 400004,
  /** dpskit: no individual enrollment with this registration id. */
  EnrollmentNotFound: 404201,
  /** dpskit: no enrollment group with this id. */
  EnrollmentGroupNotFound: 404202,
  /** dpskit: no registration record with this registration id. */
  DeviceRegistrationNotFound: 404203,
  /** dpskit: a bulk `create` found an enrollment with the same id. */
  EnrollmentConflict: 409201,
  /**
   * dpskit: an enrollment names a certificate another enrollment of its kind already uses (an
   * individual enrollment's client certificate, an enrollment group's signing or CA certificate).
   */
  CertificateConflict: 409202,
  /** dpskit: `If-Match` does not match the resource's etag (the service answers 412). */
  PreconditionFailed: 412001,
  /**
   * dpskit: creating the enrollment would pass the instance's quota (DPS documents the quotas, not
   * the answer; 403 as IoT Hub's device quota, 403002 IotHubQuotaExceeded).
   */
  EnrollmentQuotaExceeded: 403001,
  /** dpskit: a service API body whose Content-Type is not JSON (the service documents 415 for it). */
  UnsupportedMediaType: 415001,
} as const;
export type DpsErrorCodeName = keyof typeof DpsErrorCode;
export type DpsErrorCodeValue = (typeof DpsErrorCode)[DpsErrorCodeName];

/** The HTTP (or MQTT topic) status a six-digit DPS error code belongs to. */
export function statusOfErrorCode(code: number): number {
  return Math.floor(code / 1000);
}

export const DpsErrorMessage = {
  unauthorized: 'Unauthorized',
  throttled: 'Operations are being throttled for this tenant.',
  customAllocationFailed: (status: number) => `Custom allocation failed with status code: ${status}`,
  customAllocationIotHubNotSpecified: 'Custom allocation failed: the webhook returned no iotHubHostName.',
  customAllocationUnauthorizedAccess:
    'Custom allocation failed: the webhook rejected the request as unauthorized (401).',
  // The messages below are dpskit's for outcomes DPS does not document (all under 400207).
  customAllocationHubNotLinked: (hub: string, linkedHubs: readonly string[]) =>
    `Custom allocation failed: the webhook returned iotHubHostName "${hub}", which is not one of the linked hubs (${linkedHubs.join(', ') || 'none'}).`,
  customAllocationTimeout: (timeoutMs: number) =>
    `Custom allocation failed: the webhook did not answer within ${timeoutMs} ms (timeout).`,
  /**
   * observed: the webhook could not be reached (refused, reset, DNS): the real service passes on
   * .NET HttpClient's message (MicrosoftDocs/azure-docs#69789). The cause goes to the log only.
   */
  customAllocationConnectionFailed: 'An error occurred while sending the request.',
  customAllocationInvalidJson: (reason: string) =>
    `Custom allocation failed: the webhook response is not valid JSON (${reason}).`,
  customAllocationInvalidResponse: (reason: string) =>
    `Custom allocation failed: the webhook response is not a valid allocation response (${reason}).`,
  allocationNoIotHub: (reason: string) => `Allocation failed: no IoT hub can be assigned (${reason}).`,
  /** The text DPS documents for a 412 (azure-docs how-to-troubleshoot-dps). */
  preconditionFailed: 'The ETag in the request does not match the ETag of the existing resource, as per RFC7232.',
  /** observed (MicrosoftDocs/azure-docs#17690). */
  customAllocationDefinitionRequired:
    "A CustomAllocationDefinition is required when the allocation policy is set to 'Custom'.",
  /** observed (Azure/azure-sdk-for-python#35368). */
  allocationPolicyRequiredWithIotHubs: 'allocationPolicy must be specified when iotHubs are specified.',
} as const;

/** The body DPS sends with any non-2xx response (`ProvisioningServiceErrorDetails`). */
export const provisioningErrorBodySchema = z.looseObject({
  errorCode: z.number().int(),
  trackingId: z.string(),
  message: z.string(),
  info: z.record(z.string(), z.string()).optional(),
  timestampUtc: z.string(),
});
export type ProvisioningErrorBody = z.infer<typeof provisioningErrorBodySchema>;

export function parseProvisioningErrorBodyJson(text: string): ParseResult<ProvisioningErrorBody> {
  return parseJsonWith(provisioningErrorBodySchema, text, 'provisioning error body');
}

export function createErrorBody(
  errorCode: number,
  message: string,
  options: { trackingId?: string; now?: Date; info?: Record<string, string> } = {},
): ProvisioningErrorBody {
  const body: ProvisioningErrorBody = {
    errorCode,
    trackingId: options.trackingId ?? randomUUID(),
    message,
    timestampUtc: formatDpsErrorTimestamp(options.now ?? new Date()),
  };
  if (options.info) body.info = options.info;
  return body;
}
