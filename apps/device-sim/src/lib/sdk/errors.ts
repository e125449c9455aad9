import {
  type DeviceRegistrationResult,
  parseRegistrationOperationStatus,
  provisioningErrorBodySchema,
} from '@dpskit/contracts';
import { socketFailure } from '../transport/socket-error.js';
import type { OutcomeStatus } from '../types.js';

/** What an SDK error says about a registration, in the terms of `RegistrationOutcome`. */
export interface ErrorFacts {
  status: OutcomeStatus;
  errorName: string;
  errorMessage: string;
  errorCode?: number;
  operationId?: string;
  registrationState?: DeviceRegistrationResult;
  /** HTTP status or MQTT topic status of the service's error response, when there was one. */
  serviceStatus?: number;
}

export { InvalidServiceResponseError } from './invalid-response.js';

type Loose = Record<string, unknown>;

/** The names azure-iot-amqp-base's translateError gives AMQP conditions (the transport passes them untranslated). */
const AMQP_ERROR_NAMES: Record<string, string> = {
  'amqp:unauthorized-access': 'UnauthorizedError',
  'amqp:not-found': 'DeviceNotFoundError',
  'amqp:not-allowed': 'InvalidOperationError',
  'amqp:internal-error': 'InternalServerError',
  'com.microsoft:argument-error': 'ArgumentError',
  'com.microsoft:device-container-throttled': 'ThrottlingError',
  'amqp:link:message-size-exceeded': 'MessageTooLargeError',
};

function asObject(value: unknown): Loose | undefined {
  return typeof value === 'object' && value !== null ? (value as Loose) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function fromServiceBody(body: unknown): { errorCode?: number; message?: string } {
  const parsed = provisioningErrorBodySchema.partial().safeParse(body);
  if (!parsed.success) return {};
  const out: { errorCode?: number; message?: string } = {};
  if (parsed.data.errorCode !== undefined) out.errorCode = parsed.data.errorCode;
  if (parsed.data.message !== undefined) out.message = parsed.data.message;
  return out;
}

function fromOperationBody(result: unknown): { operationId?: string; registrationState?: DeviceRegistrationResult } {
  const parsed = parseRegistrationOperationStatus(result);
  if (!parsed.ok) return {};
  const out: { operationId?: string; registrationState?: DeviceRegistrationResult } = {
    operationId: parsed.value.operationId,
  };
  if (parsed.value.registrationState) out.registrationState = parsed.value.registrationState;
  return out;
}

/**
 * Maps what `ProvisioningDeviceClient.register()` rejects with to an outcome. The SDK's error types
 * come from azure-iot-common (not a dependency of ours), so they are recognised by `name`, which the
 * SDK sets on each class.
 */
export function describeRegistrationError(error: unknown): ErrorFacts {
  const err = asObject(error);
  if (!err) return { status: 'error', errorName: 'Error', errorMessage: String(error) };
  const name = str(err.name) ?? 'Error';
  const message = str(err.message) ?? '';

  // status "failed" in a 2xx response: the service's final answer, with registrationState.errorCode.
  // The class is DeviceRegistrationFailedError; its `name` is ProvisioningRegistrationFailedError.
  if (name === 'ProvisioningRegistrationFailedError' || name === 'DeviceRegistrationFailedError') {
    const body = fromOperationBody(err.result);
    const state = body.registrationState;
    const facts: ErrorFacts = {
      status: 'failed',
      errorName: name,
      errorMessage: state?.errorMessage ?? 'registration failed (the service gave no errorMessage)',
      ...body,
    };
    if (state?.errorCode !== undefined) facts.errorCode = state.errorCode;
    return facts;
  }

  // Any status the polling state machine does not know, e.g. "disabled" for a disabled enrollment.
  const unknownStatus = /^status is (.*)$/.exec(message);
  if (name === 'SyntaxError' && unknownStatus && err.result !== undefined) {
    const body = fromOperationBody(err.result);
    const status = unknownStatus[1] ?? '';
    const state = body.registrationState;
    const facts: ErrorFacts = {
      status: status.toLowerCase() === 'disabled' ? 'disabled' : 'error',
      errorName: status.toLowerCase() === 'disabled' ? 'RegistrationDisabledError' : 'UnexpectedStatusError',
      errorMessage:
        state?.errorMessage ??
        (status.toLowerCase() === 'disabled'
          ? 'the enrollment (or this device) is disabled'
          : `the service answered with status "${status}", which the SDK does not accept`),
      ...body,
    };
    if (state?.errorCode !== undefined) facts.errorCode = state.errorCode;
    return facts;
  }

  // MQTT: an error status on the response topic; `.result` is the parsed error body and
  // `.transportObject.topic` carries the status.
  const transportObject = asObject(err.transportObject);
  if (err.result !== undefined && transportObject) {
    const body = fromServiceBody(err.result);
    const facts: ErrorFacts = {
      status: 'error',
      errorName: name,
      errorMessage: body.message ?? message,
    };
    if (body.errorCode !== undefined) facts.errorCode = body.errorCode;
    const topicStatus = /^\$dps\/registrations\/res\/(\d+)\//.exec(str(transportObject.topic) ?? '');
    if (topicStatus) facts.serviceStatus = Number(topicStatus[1]);
    return facts;
  }

  // HTTP: azure-iot-http-base turned a status >= 300 into a typed error with the raw body.
  const response = asObject(err.response);
  if (typeof err.responseBody === 'string' && response) {
    const statusCode = typeof response.statusCode === 'number' ? response.statusCode : undefined;
    let decoded: unknown;
    try {
      decoded = JSON.parse(err.responseBody);
    } catch {
      decoded = undefined;
    }
    const body = fromServiceBody(decoded);
    const facts: ErrorFacts = {
      status: 'error',
      errorName: name,
      errorMessage: body.message ?? `HTTP ${statusCode ?? '?'} ${err.responseBody.slice(0, 200) || message}`.trim(),
    };
    if (body.errorCode !== undefined) facts.errorCode = body.errorCode;
    if (statusCode !== undefined) facts.serviceStatus = statusCode;
    return facts;
  }

  // AMQP: the transport rejects with the AMQP error itself (the connection's close error, or a
  // delivery's rejection), not an Error: a condition, and the DPS error body as description.
  const condition = str(err.condition);
  if (condition) {
    let decoded: unknown;
    try {
      decoded = JSON.parse(str(err.description) ?? '');
    } catch {
      decoded = undefined;
    }
    const body = fromServiceBody(decoded);
    const facts: ErrorFacts = {
      status: 'error',
      errorName: AMQP_ERROR_NAMES[condition] ?? condition,
      errorMessage: body.message ?? (str(err.description) || condition),
    };
    if (body.errorCode !== undefined) facts.errorCode = body.errorCode;
    return facts;
  }

  // A connection that could not be made: Node's code (ECONNREFUSED, TLS), or rhea's ProtocolError
  // ("Invalid protocol header for AMQP HTTP": another protocol's port), which says more than
  // NotConnectedError.
  const socket = socketFailure(err);
  if (socket) return { status: 'error', ...socket, errorMessage: socket.errorMessage || message };

  if (name === 'TimeoutError') {
    return {
      status: 'error',
      errorName: name,
      errorMessage: 'the service did not answer a request within 30 s (the SDK timeout per request)',
    };
  }
  if (name === 'OperationCancelledError') {
    return {
      status: 'error',
      errorName: name,
      errorMessage: message || 'the SDK cancelled the operation (the connection closed before the service answered)',
    };
  }
  return { status: 'error', errorName: name, errorMessage: message || name };
}

/** Failures a client cannot fix by trying again: credentials, certificates, answers it cannot use. */
const PERMANENT_ERROR_NAMES = new Set([
  'UnauthorizedError',
  'ArgumentError',
  'InvalidServiceResponseError',
  'UnexpectedStatusError',
  'RegistrationDisabledError',
]);

/**
 * Whether a failed registration is worth a new register request, as a real device retries: the
 * service never gave a final answer because the connection failed (refused, reset, dropped while
 * polling, the SDK's request timeout), or it answered 429 or 5xx. Not: a final answer (assigned,
 * failed, disabled), a refusal (401, 400, 404), or a certificate the device does not trust.
 */
export function isTransientFailure(facts: ErrorFacts): boolean {
  if (facts.status !== 'error') return false;
  if (facts.serviceStatus !== undefined) return facts.serviceStatus === 429 || facts.serviceStatus >= 500;
  if (PERMANENT_ERROR_NAMES.has(facts.errorName)) return false;
  // Node's TLS verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT,
  // CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ...): the same certificate comes back next time.
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(facts.errorName)) return false;
  return facts.errorCode === undefined || facts.errorCode >= 500_000 || Math.floor(facts.errorCode / 1000) === 429;
}
