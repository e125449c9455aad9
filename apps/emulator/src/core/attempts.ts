import type { AllocationPolicy, AssignedSubstatus } from '@dpskit/contracts';
import type { WebhookReport } from './allocation/custom.js';
import { clip } from './client-text.js';
import type { DeviceTransport, RegistrationEvent, RegistrationOutcome } from './events.js';
import type { EnrollmentRef } from './model.js';

/**
 * The registration attempt log: one entry per register request (assigned, failed, disabled or
 * refused), newest kept, with what the web view shows when a row is opened. The registration
 * records keep only each device's last state; this keeps the history and the webhook exchanges.
 */

/** One attempt as the web view lists it. */
export interface AttemptSummary {
  /** Increasing, assigned by the store. */
  seq: number;
  timestampUtc: string;
  registrationId: string;
  operationId?: string;
  transport: DeviceTransport;
  enrollment?: EnrollmentRef;
  policy?: AllocationPolicy;
  status: RegistrationOutcome['status'];
  assignedHub?: string;
  deviceId?: string;
  substatus?: AssignedSubstatus;
  errorCode?: number;
  errorMessage?: string;
  durationMs: number;
  /** Status, latency and calls of the webhook, URL masked. */
  webhook?: WebhookReport;
}

/** Text kept up to `MAX_ATTEMPT_TEXT` characters; `omitted` counts the rest. */
export interface ClippedText {
  text: string;
  omitted?: number;
}

/** What opening a row shows. JSON values are kept as their JSON text, clipped. */
export interface AttemptDetail {
  /** The payload the device sent. */
  devicePayload?: ClippedText;
  /** The webhook request body DPS sent and the answer (status, body) it got. */
  webhook?: {
    request: { url: string; body: ClippedText };
    response?: { status: number; body: ClippedText; bodyError?: string };
  };
  /** The registration state the device got. */
  registrationState?: ClippedText;
  /** The twin DPS would write to the hub. */
  initialTwin?: ClippedText;
}

export type AttemptEntry = AttemptSummary & { detail: AttemptDetail };

/** Longest text kept per body or JSON value of an attempt (the log is for looking, not an archive). */
export const MAX_ATTEMPT_TEXT = 16 * 1024;

/** How many attempts the store keeps by default (the oldest go first). */
export const DEFAULT_ATTEMPT_HISTORY = 10_000;

/**
 * The most `attemptHistory` takes: an attempt is a few KiB (up to 64 KiB with every body at its
 * clip), so a million keeps the log within the size of a large fleet run, never unbounded.
 */
export const MAX_ATTEMPT_HISTORY = 1_000_000;

/** Why `value` is not an attempt history setting (`name` is the flag or field), or undefined when it is. */
export function attemptHistoryProblem(name: string, value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ATTEMPT_HISTORY)
    return undefined;
  return `${name} must be a whole number of attempts from 0 to ${MAX_ATTEMPT_HISTORY} (0 keeps none), not ${typeof value === 'string' ? `"${value}"` : String(value)}`;
}

export function clipText(text: string, max = MAX_ATTEMPT_TEXT): ClippedText {
  return text.length <= max ? { text } : { text: text.slice(0, max), omitted: text.length - max };
}

/** The log entry of one registration event (without its `seq`, which the store assigns). */
export function attemptFromEvent(event: RegistrationEvent): Omit<AttemptSummary, 'seq'> & { detail: AttemptDetail } {
  const { outcome } = event;
  const summary: Omit<AttemptSummary, 'seq'> = {
    timestampUtc: event.timestampUtc,
    // A refused device's registration id is whatever it sent: bounded like every logged client value.
    registrationId: clip(event.registrationId),
    transport: event.transport,
    status: outcome.status,
    durationMs: event.durationMs,
  };
  if (event.operationId) summary.operationId = event.operationId;
  if (event.enrollment) summary.enrollment = { ...event.enrollment };
  if (event.policy) summary.policy = event.policy;
  if (outcome.assignedHub) summary.assignedHub = outcome.assignedHub;
  if (outcome.deviceId) summary.deviceId = outcome.deviceId;
  if (outcome.substatus) summary.substatus = outcome.substatus;
  if (outcome.errorCode !== undefined) summary.errorCode = outcome.errorCode;
  if (outcome.errorMessage !== undefined) summary.errorMessage = clip(outcome.errorMessage, 1024);
  if (event.webhook) summary.webhook = { ...event.webhook };

  const detail: AttemptDetail = {};
  if (event.devicePayload !== undefined) detail.devicePayload = clipText(JSON.stringify(event.devicePayload));
  const exchange = event.webhookExchange;
  if (exchange) {
    detail.webhook = { request: { url: exchange.request.url, body: clipText(exchange.request.body) } };
    if (exchange.response) {
      detail.webhook.response = { status: exchange.response.status, body: clipText(exchange.response.body) };
      if (exchange.response.bodyError) detail.webhook.response.bodyError = exchange.response.bodyError;
    }
  }
  if (event.registrationState) detail.registrationState = clipText(JSON.stringify(event.registrationState));
  if (outcome.initialTwin) detail.initialTwin = clipText(JSON.stringify(outcome.initialTwin));
  // The detail added to the summary, not `{ ...summary, detail }`: optimized code gives every
  // object that starts with a spread and gets more properties a map of its own (see #record in
  // registrations.ts).
  const entry = summary as Omit<AttemptSummary, 'seq'> & { detail: AttemptDetail };
  entry.detail = detail;
  return entry;
}

/** The port the attempt log persists through (SQLite in the emulator). */
export interface AttemptStore {
  /** Saves an attempt; returns its `seq`. */
  appendAttempt(attempt: Omit<AttemptEntry, 'seq'>): number;
  /** Attempts with `seq > afterSeq`, oldest first, at most `limit`. */
  attemptsAfter(afterSeq: number, limit: number): AttemptSummary[];
  /** The newest `limit` attempts, oldest first. */
  latestAttempts(limit: number): AttemptSummary[];
  getAttempt(seq: number): AttemptEntry | undefined;
  /** Keeps the newest `keep` attempts; returns how many were forgotten. */
  pruneAttempts(keep: number): number;
}
