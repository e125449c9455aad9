import {
  CERTIFICATE_ISSUANCE_API_VERSION,
  createErrorBody,
  DpsErrorCode,
  DpsErrorMessage,
  type ProvisioningErrorBody,
  parseDeviceRegistrationJson,
  statusOfErrorCode,
} from '@dpskit/contracts';
import type { AttestationResult } from './attestation.js';
import { csrProblem } from './certificate-issuance.js';
import type { DeviceTransport } from './events.js';
import type { OperationView, RegistrationService } from './registrations.js';

/**
 * A device API answer, independent of the wire: MQTT puts `status` and `retry-after` in the
 * response topic, HTTPS in the status line and a header. Bodies are always JSON objects with a
 * top-level `status` (2xx) or a DPS error body (everything else): anything else crashes the SDK.
 */
export interface DeviceApiResponse {
  status: number;
  body: object;
  /** `JSON.stringify(body)` when it is known already (a poll's answer as stored): written as it is. */
  bodyJson?: string;
  retryAfterSeconds?: number;
}

export function errorResponse(errorCode: number, message: string): DeviceApiResponse & { body: ProvisioningErrorBody } {
  return { status: statusOfErrorCode(errorCode), body: createErrorBody(errorCode, message) };
}

/** Whether a device API version carries `csr` (`2025-07-01-preview` and every version after it). */
export function carriesCertificateIssuance(apiVersion: string): boolean {
  return apiVersion.slice(0, 10) >= CERTIFICATE_ISSUANCE_API_VERSION.slice(0, 10);
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

/**
 * The code of a refused device: 401000 over MQTT (on TLS or WebSockets), 401002 over HTTPS and AMQP,
 * as the real service answers each (MicrosoftDocs/azure-docs#43157, azure-iot-sdk-node#721, and the
 * AMQP open-error in azure-iot-sdk-c#815).
 */
export function unauthorizedErrorCode(transport: DeviceTransport): number {
  return transport === 'mqtt' || transport === 'mqtt-ws' ? DpsErrorCode.MqttUnauthorized : DpsErrorCode.Unauthorized;
}

const unauthorized = (transport: DeviceTransport) =>
  errorResponse(unauthorizedErrorCode(transport), DpsErrorMessage.unauthorized);

/**
 * With `retry-after: 0` a poll that finds the operation still assigning waits this long for the
 * allocation to finish before it answers: the device polls at once, and would otherwise ask again
 * and again while a webhook runs. Well below every SDK's request timeout (30 s in Node and Python).
 */
export const DEFAULT_POLL_HOLD_MS = 5_000;

export interface DeviceApiOptions {
  /**
   * Whole seconds sent as `retry-after` with every `assigning` answer (DPS sends 3). Only integers:
   * the Python SDK reads it with `int(x, 10)` and the C SDK with `az_span_atou32`, both of which
   * fail on a fraction. `0` makes the SDKs poll at once, and each such poll is answered as soon as
   * the allocation is done (see `pollHoldMs`).
   */
  retryAfterSeconds: number;
  /** Deepest JSON nesting accepted in a register body (default `DEFAULT_MAX_JSON_DEPTH`, 64). */
  maxJsonDepth?: number;
  /** How long a poll waits for the allocation when `retryAfterSeconds` is 0 (default 5000 ms). */
  pollHoldMs?: number;
  /** Each answered poll (for the debug log: with `--workers`, which worker answered it). */
  onPoll?: (poll: PollReport) => void;
}

/** An answered poll, as `onPoll` reports it. */
export interface PollReport {
  registrationId: string;
  operationId: string;
  transport: DeviceTransport;
  state: string;
}

/** The three device operations of DPS, shared by the MQTT and HTTPS transports. */
export class DeviceApi {
  constructor(
    readonly service: RegistrationService,
    readonly options: DeviceApiOptions,
  ) {
    assertRetryAfterSeconds(options.retryAfterSeconds);
  }

  /**
   * `PUT …/register` and `$dps/registrations/PUT/iotdps-register/`. Transports pass the raw bytes:
   * a body that is not UTF-8 is refused rather than decoded with replacement characters, which
   * would hand the webhook a silently altered payload. `apiVersion`, when the transport knows it
   * (HTTPS query, MQTT username), gates `csr` (certificate issuance) as DPS versions it.
   */
  register(
    attestation: AttestationResult,
    message: string | Uint8Array,
    transport: DeviceTransport,
    apiVersion?: string,
  ): DeviceApiResponse {
    const started = this.#register(attestation, message, transport, apiVersion, false);
    if (started instanceof Promise) throw new Error('unreachable: register started an operation saved later');
    return started;
  }

  /**
   * `register` as the transports call it: the 202 comes as a promise when the operation is saved
   * with the store's other writes of the event-loop turn (`RegistrationService.registerSoon`),
   * once they are committed; every refusal comes at once.
   */
  registerSoon(
    attestation: AttestationResult,
    message: string | Uint8Array,
    transport: DeviceTransport,
    apiVersion?: string,
  ): DeviceApiResponse | Promise<DeviceApiResponse> {
    return this.#register(attestation, message, transport, apiVersion, true);
  }

  #register(
    attestation: AttestationResult,
    message: string | Uint8Array,
    transport: DeviceTransport,
    apiVersion: string | undefined,
    soon: boolean,
  ): DeviceApiResponse | Promise<DeviceApiResponse> {
    if (!attestation.ok) {
      this.service.reportUnauthorized(attestation, transport);
      return unauthorized(transport);
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
    const parsed = parseDeviceRegistrationJson(
      bodyText,
      this.options.maxJsonDepth === undefined ? {} : { maxDepth: this.options.maxJsonDepth },
    );
    if (!parsed.ok) return errorResponse(DpsErrorCode.InvalidRequestBody, parsed.error.message);
    const request = parsed.value;
    if (
      request.registrationId !== undefined &&
      request.registrationId.toLowerCase() !== attestation.registrationId.toLowerCase()
    ) {
      return errorResponse(
        DpsErrorCode.InvalidRegistrationId,
        `The registrationId "${request.registrationId}" in the body does not match the authenticated registration "${attestation.registrationId}".`,
      );
    }
    if (request.csr !== undefined) {
      const refused = this.#csrProblem(attestation.registrationId, request.csr, apiVersion);
      if (refused) return errorResponse(DpsErrorCode.InvalidRequestBody, refused);
    }
    const { retryAfterSeconds } = this.options;
    if (!soon) {
      const body = this.service.register(attestation, request.payload, transport, request.csr);
      return { status: 202, body, retryAfterSeconds };
    }
    const body = this.service.registerSoon(attestation, request.payload, transport, request.csr);
    return body instanceof Promise
      ? body.then((saved) => ({ status: 202, body: saved, retryAfterSeconds }))
      : { status: 202, body, retryAfterSeconds };
  }

  /**
   * Certificate issuance: a register body with `csr` is refused (400001, naming the cause) before
   * any operation starts when its api-version predates `csr`, no issuing CA is configured, or the
   * request is not a PKCS#10 request for the registration id. Its signature is checked when the
   * certificate is signed, on assignment (WebCrypto verifies asynchronously; the device API
   * answers synchronously): a request whose signature fails ends `failed` with 400001.
   */
  #csrProblem(registrationId: string, csr: string, apiVersion: string | undefined): string | undefined {
    if (apiVersion !== undefined && !carriesCertificateIssuance(apiVersion)) {
      return `csr (certificate issuance) needs api-version ${CERTIFICATE_ISSUANCE_API_VERSION} or later, not ${apiVersion.slice(0, 32)}.`;
    }
    if (!this.service.issuesCertificates) {
      return 'csr: certificate issuance is not configured on this emulator (start it with --issuing-ca and --issuing-ca-key).';
    }
    const problem = csrProblem(csr, registrationId);
    return problem ? `${problem}.` : undefined;
  }

  /**
   * `GET …/operations/{operationId}` and `$dps/registrations/GET/iotdps-get-operationstatus/`.
   * Asynchronous only with `retry-after: 0`, where an unfinished operation is answered when its
   * allocation ends (or after `pollHoldMs`).
   */
  async operationStatus(
    attestation: AttestationResult,
    operationId: string,
    transport: DeviceTransport,
  ): Promise<DeviceApiResponse> {
    return this.poll(attestation, operationId, transport);
  }

  /**
   * `operationStatus`, but answered at once when it can be (every case but a poll to hold): a
   * transport answers without a promise in between (MQTT then writes the PUBACK and the answer in
   * one TLS record), and a poll to hold gets the promise. The operation is read once after the
   * hold, and before it only when its allocation is not running in this process (it may be in
   * another on the same store). (Issue #13: MQTT asked `pollNow`, which read it and gave up on a
   * poll to hold, and then `operationStatus`, which read it again: two store reads more for every
   * poll held, i.e. for nearly every registration of a custom enrollment with retry-after 0.)
   */
  poll(
    attestation: AttestationResult,
    operationId: string,
    transport: DeviceTransport,
  ): DeviceApiResponse | Promise<DeviceApiResponse> {
    if (!attestation.ok) return unauthorized(transport);
    const hold = this.options.retryAfterSeconds === 0;
    // Running here: assigning, no read needed before the hold (RegistrationService.allocating).
    if (hold && this.service.allocating(attestation.registrationId, operationId)) {
      return this.#afterHold(attestation.registrationId, operationId, transport);
    }
    const view = this.service.operation(attestation.registrationId, operationId);
    if (view.state === 'assigning' && hold) {
      return this.#afterHold(attestation.registrationId, operationId, transport);
    }
    return this.#pollAnswer(view, attestation.registrationId, operationId, transport);
  }

  async #afterHold(
    registrationId: string,
    operationId: string,
    transport: DeviceTransport,
  ): Promise<DeviceApiResponse> {
    await this.service.settled(operationId, this.options.pollHoldMs ?? DEFAULT_POLL_HOLD_MS);
    const view = this.service.operation(registrationId, operationId);
    return this.#pollAnswer(view, registrationId, operationId, transport);
  }

  #pollAnswer(
    view: OperationView,
    registrationId: string,
    operationId: string,
    transport: DeviceTransport,
  ): DeviceApiResponse {
    this.options.onPoll?.({ registrationId, operationId, transport, state: view.state });
    if (view.state === 'not-found') {
      return errorResponse(
        DpsErrorCode.OperationNotFound,
        `Operation "${operationId}" was not found for this registration.`,
      );
    }
    if (view.state === 'assigning')
      return { status: 202, body: view.body, retryAfterSeconds: this.options.retryAfterSeconds };
    return view.json === undefined
      ? { status: 200, body: view.body }
      : { status: 200, body: view.body, bodyJson: view.json };
  }

  /** `POST /{idScope}/registrations/{registrationId}`: the device's registration record. */
  statusLookup(attestation: AttestationResult): DeviceApiResponse {
    if (!attestation.ok) return unauthorized('https');
    const result = this.service.lookup(attestation.registrationId);
    if (!result) {
      return errorResponse(DpsErrorCode.NotFound, `No registration record exists for "${attestation.registrationId}".`);
    }
    return { status: 200, body: result };
  }
}

/**
 * The largest `retry-after` the legacy Azure IoT C SDK takes as given: its `parse_retry_after_value`
 * (azure-iot-sdk-c `prov_transport.h`) replaces anything above 5 × 60 s, and below 1 s, with 1 s.
 */
export const MAX_RETRY_AFTER_SECONDS = 300;

/** Refuses a `retry-after` that an SDK cannot parse: fractions, negatives, non-numbers. */
export function assertRetryAfterSeconds(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_RETRY_AFTER_SECONDS) {
    throw new RangeError(
      `retryAfterSeconds must be a whole number of seconds from 0 to ${MAX_RETRY_AFTER_SECONDS}, not ${value}: the Python SDK (int(x, 10)) and the C SDK (az_span_atou32) cannot parse fractions; use 0 to poll at once`,
    );
  }
}
