import type { DeviceRegistrationResult } from '@dpskit/contracts';
import type { HubSession } from './hub.js';

/**
 * The SDK transports: MQTT and AMQP over TLS or WebSockets (`-ws`, always port 443 in the SDK), and
 * HTTPS.
 */
export type TransportName = 'mqtt' | 'mqtt-ws' | 'amqp' | 'amqp-ws' | 'http';
export const TRANSPORTS: readonly TransportName[] = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'http'];

/** The real DPS global device endpoint: what the Azure docs and SDK samples use. */
export const DEFAULT_PROVISIONING_HOST = 'global.azure-devices-provisioning.net';

/**
 * A step of one registration, as seen from the device. Mirrors the C SDK's
 * `PROV_DEVICE_REG_STATUS_*` callback that the tutorial prints; the Node SDK has no such callback,
 * so device-sim derives these from the transport's responses (nothing extra goes on the wire).
 */
export type RegistrationPhase = 'connected' | 'registering' | 'assigning' | 'assigned' | 'failed' | 'disabled';

export interface StatusUpdate {
  registrationId: string;
  phase: RegistrationPhase;
  /** The C SDK's name for the phase, e.g. `PROV_DEVICE_REG_STATUS_ASSIGNING`. */
  sdkStatus: string;
  /** DPS operation id, once the service has given one. */
  operationId?: string;
  /** How long the SDK waits before its next request: the service's `retry-after`, else the polling interval (ms). */
  nextPollMs?: number;
  /** True when the service answered 429/5xx over MQTT and the SDK will retry. */
  throttled?: boolean;
  /** Milliseconds since `registerDevice` started. */
  elapsedMs: number;
}

export type OutcomeStatus = 'assigned' | 'failed' | 'disabled' | 'error';

export interface RegistrationOutcome {
  registrationId: string;
  transport: TransportName;
  /**
   * `assigned`/`failed`/`disabled`: the service's final answer. `error`: no final answer (unauthorized,
   * connection or TLS failure, timeout, cancelled, a response the SDK rejected).
   */
  status: OutcomeStatus;
  assignedHub?: string;
  deviceId?: string;
  /** The `payload` the allocation webhook returned (not an echo of the device's payload). */
  payload?: Record<string, unknown>;
  /** The service's `registrationState`, unchanged, when it sent one. */
  registrationState?: DeviceRegistrationResult;
  operationId?: string;
  /** DPS six-digit error code (e.g. 400207, 401002) when the service sent one. */
  errorCode?: number;
  errorMessage?: string;
  /**
   * The SDK error's `name` (`ProvisioningRegistrationFailedError` for status failed, `UnauthorizedError`,
   * `TimeoutError`, `OperationCancelledError`, ...), Node's error code for connection and TLS failures
   * (`ECONNREFUSED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, ...), or device-sim's own: `AbortError`
   * (cancelled), `RegistrationDisabledError`, `InvalidServiceResponseError`.
   */
  errorName?: string;
  /** Register requests this outcome took, when more than one (`retries` after transient failures). */
  attempts?: number;
  /** From the first attempt to the outcome, back-offs included. */
  durationMs: number;
  /** With `connect`: what happened when the assigned device connected to its hub. */
  hubSession?: HubSession;
}
