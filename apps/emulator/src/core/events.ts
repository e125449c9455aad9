import type {
  AllocationPolicy,
  AssignedSubstatus,
  DevicePayload,
  DeviceRegistrationResult,
  InitialTwin,
} from '@dpskit/contracts';
import type { WebhookExchange, WebhookReport } from './allocation/custom.js';
import type { EnrollmentRef } from './model.js';

/**
 * The wire a device request came over: MQTT over TLS, MQTT over WebSockets, AMQP 1.0 over TLS, AMQP
 * over WebSockets, or HTTPS. Every one is a thin adapter over the same registration core.
 */
export const DEVICE_TRANSPORTS = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https'] as const;
export type DeviceTransport = (typeof DEVICE_TRANSPORTS)[number];

export function isDeviceTransport(value: unknown): value is DeviceTransport {
  return typeof value === 'string' && (DEVICE_TRANSPORTS as readonly string[]).includes(value);
}

/** Emitted once per register request: when its outcome is known, or when it was refused. */
export interface RegistrationEvent {
  registrationId: string;
  /** Absent when the request was refused before an operation was created. */
  operationId?: string;
  transport: DeviceTransport;
  enrollment?: EnrollmentRef;
  /** The allocation policy that decided (the enrollment's, or the instance default). */
  policy?: AllocationPolicy;
  /** Present when a custom allocation webhook was called. */
  webhook?: WebhookReport;
  outcome: RegistrationOutcome;
  /** The webhook request body and answer in full (the web view shows them; the log does not). */
  webhookExchange?: WebhookExchange;
  /** The payload the device sent with its register request. */
  devicePayload?: DevicePayload;
  /** The registration state the device got (the operation's final answer). */
  registrationState?: DeviceRegistrationResult;
  /** From the register request to the outcome. */
  durationMs: number;
  timestampUtc: string;
}

export interface RegistrationOutcome {
  /** `unauthorized`: attestation failed and the device got a 401. */
  status: 'assigned' | 'failed' | 'disabled' | 'unauthorized';
  assignedHub?: string;
  deviceId?: string;
  substatus?: AssignedSubstatus;
  errorCode?: number;
  errorMessage?: string;
  /** The twin DPS would write to the hub on this assignment, when it writes one. */
  initialTwin?: InitialTwin;
  /** The webhook's payload returned to the device. */
  payload?: Record<string, unknown>;
}
