import {
  createErrorBody,
  DpsErrorCode,
  DpsErrorMessage,
  type ProvisioningErrorBody,
  parseDeviceRegistrationJson,
  statusOfErrorCode,
} from '@dpskit/contracts';
import type { AttestationResult } from './attestation.js';
import type { DeviceTransport } from './events.js';
import type { RegistrationService } from './registrations.js';

/**
 * A device API answer, independent of the wire: MQTT puts `status` and `retry-after` in the
 * response topic, HTTPS in the status line and a header. Bodies are always JSON objects with a
 * top-level `status` (2xx) or a DPS error body (everything else): anything else crashes the SDK.
 */
export interface DeviceApiResponse {
  status: number;
  body: object;
  retryAfterSeconds?: number;
}

export function errorResponse(errorCode: number, message: string): DeviceApiResponse & { body: ProvisioningErrorBody } {
  return { status: statusOfErrorCode(errorCode), body: createErrorBody(errorCode, message) };
}

/** DPS caps device messages at 96 KB. */
export const MAX_DEVICE_MESSAGE_BYTES = 96 * 1024;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a UTF-8 body, or undefined when the bytes are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const unauthorized = () => errorResponse(DpsErrorCode.Unauthorized, DpsErrorMessage.unauthorized);

/** The three device operations of DPS, shared by the MQTT and HTTPS transports. */
export class DeviceApi {
  constructor(
    readonly service: RegistrationService,
    readonly options: { retryAfterSeconds: number },
  ) {}

  /**
   * `PUT …/register` and `$dps/registrations/PUT/iotdps-register/`. Transports pass the raw bytes:
   * a body that is not UTF-8 is refused rather than decoded with replacement characters, which
   * would hand the webhook a silently altered payload.
   */
  register(
    attestation: AttestationResult,
    message: string | Uint8Array,
    transport: DeviceTransport,
  ): DeviceApiResponse {
    if (!attestation.ok) {
      this.service.reportUnauthorized(attestation, transport);
      return unauthorized();
    }
    const size = typeof message === 'string' ? Buffer.byteLength(message, 'utf8') : message.byteLength;
    if (size > MAX_DEVICE_MESSAGE_BYTES) {
      return errorResponse(
        DpsErrorCode.InvalidRequestBody,
        `The request body is ${size} bytes; DPS accepts at most ${MAX_DEVICE_MESSAGE_BYTES}.`,
      );
    }
    const bodyText = typeof message === 'string' ? message : decodeUtf8(message);
    if (bodyText === undefined) {
      return errorResponse(DpsErrorCode.InvalidRequestBody, 'The request body is not valid UTF-8.');
    }
    const parsed = parseDeviceRegistrationJson(bodyText);
    if (!parsed.ok) return errorResponse(DpsErrorCode.InvalidRequestBody, parsed.error.message);
    const request = parsed.value;
    if (request.registrationId.toLowerCase() !== attestation.registrationId.toLowerCase()) {
      return errorResponse(
        DpsErrorCode.InvalidRegistrationId,
        `The registrationId "${request.registrationId}" in the body does not match the authenticated registration "${attestation.registrationId}".`,
      );
    }
    const body = this.service.register(attestation, request.payload, transport);
    return { status: 202, body, retryAfterSeconds: this.options.retryAfterSeconds };
  }

  /** `GET …/operations/{operationId}` and `$dps/registrations/GET/iotdps-get-operationstatus/`. */
  operationStatus(attestation: AttestationResult, operationId: string): DeviceApiResponse {
    if (!attestation.ok) return unauthorized();
    const view = this.service.operation(attestation.registrationId, operationId);
    if (view.state === 'not-found') {
      return errorResponse(
        DpsErrorCode.OperationNotFound,
        `Operation "${operationId}" was not found for this registration.`,
      );
    }
    if (view.state === 'assigning')
      return { status: 202, body: view.body, retryAfterSeconds: this.options.retryAfterSeconds };
    return { status: 200, body: view.body };
  }

  /** `POST /{idScope}/registrations/{registrationId}`: the device's registration record. */
  statusLookup(attestation: AttestationResult): DeviceApiResponse {
    if (!attestation.ok) return unauthorized();
    const result = this.service.lookup(attestation.registrationId);
    if (!result) {
      return errorResponse(DpsErrorCode.NotFound, `No registration record exists for "${attestation.registrationId}".`);
    }
    return { status: 200, body: result };
  }
}
