import {
  type AllocationRequest,
  type DevicePayload,
  type DeviceRuntimeContext,
  DpsErrorCode,
  DpsErrorMessage,
  decodeJson,
  type InitialTwin,
  parseAllocationResponse,
  toWebhookView,
  type X509RuntimeContext,
} from '@dpskit/contracts';
import type { EmulatedEnrollment } from '../model.js';
import type { AllocationDecision } from './decision.js';

export interface AllocationRequestInput {
  enrollment: EmulatedEnrollment;
  registrationId: string;
  payload?: DevicePayload | undefined;
  /** The device's current assignment when it registered before. */
  current?: { hub: string; deviceId: string } | undefined;
  linkedHubs: readonly string[];
  /** X.509 devices: the certificate details (see contracts' `x509RuntimeContextSchema`). */
  x509?: X509RuntimeContext | undefined;
}

/**
 * The body DPS POSTs to the webhook, with its field order: the enrollment as DPS serializes it
 * (no keys, webhook query masked), then `deviceRuntimeContext`, then `linkedHubs`.
 */
export function buildAllocationRequest(input: AllocationRequestInput): AllocationRequest {
  const context: DeviceRuntimeContext = { registrationId: input.registrationId };
  if (input.current) {
    context.currentIotHubHostName = input.current.hub;
    context.currentDeviceId = input.current.deviceId;
  }
  // Symmetric keys: observed as `{}` in every captured request, whatever the documentation table says.
  if (input.x509) context.x509 = input.x509;
  else context.symmetricKey = {};
  if (input.payload !== undefined) context.payload = input.payload;
  const linkedHubs = [...input.linkedHubs];
  return input.enrollment.kind === 'group'
    ? { enrollmentGroup: toWebhookView(input.enrollment.record), deviceRuntimeContext: context, linkedHubs }
    : { individualEnrollment: toWebhookView(input.enrollment.record), deviceRuntimeContext: context, linkedHubs };
}

/** What one webhook call produced, as the HTTP client observed it. */
export type WebhookCallOutcome =
  | {
      kind: 'response';
      status: number;
      body: string /** Set when the body could not be read whole. */;
      bodyError?: string;
    }
  | { kind: 'timeout'; timeoutMs: number }
  | { kind: 'connection-error'; reason: string };

export type WebhookAttemptResult = { kind: 'retry'; status: number } | AllocationDecision;

const failed = (errorCode: number, errorMessage: string): AllocationDecision => ({
  kind: 'failed',
  errorCode,
  errorMessage,
});

/**
 * Why the hub would refuse a webhook's `initialTwin`, as `initialTwin.<field>: <cause>`
 * (`initialTwinProblem` of core/enrollments/validate.ts: IoT Hub's twin rules; `answerText`, the
 * answer as sent, for integers outside IoT Hub's range, rounded once parsed). Passed in, not
 * imported: this module is also compiled for the web view, where the hub's code (node:) is not.
 */
export type InitialTwinCheck = (initialTwin: InitialTwin | null | undefined, answerText: string) => string | undefined;

/**
 * Maps one webhook outcome the way DPS documents it: 2xx with a linked hub → assigned; empty or
 * null hub → 400208; 401 → 400209; ≥ 429 → retry; any other status → 400207 with DPS's message.
 * Outcomes DPS does not document (hub outside `linkedHubs`, timeout, connection failure, a body
 * that is not JSON or not an allocation response, an `initialTwin` `twinProblem` finds) fail with
 * 400207 and a message saying which.
 */
export function interpretWebhookOutcome(
  outcome: WebhookCallOutcome,
  linkedHubs: readonly string[],
  twinProblem?: InitialTwinCheck,
): WebhookAttemptResult {
  if (outcome.kind === 'timeout') {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationTimeout(outcome.timeoutMs));
  }
  if (outcome.kind === 'connection-error') {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationConnectionFailed);
  }
  const { status } = outcome;
  if (status === 401) {
    return failed(DpsErrorCode.CustomAllocationUnauthorizedAccess, DpsErrorMessage.customAllocationUnauthorizedAccess);
  }
  if (status >= 429) return { kind: 'retry', status };
  if (status < 200 || status > 299) {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationFailed(status));
  }

  if (outcome.bodyError) {
    return failed(
      DpsErrorCode.CustomAllocationFailed,
      DpsErrorMessage.customAllocationInvalidResponse(outcome.bodyError),
    );
  }
  // Depth-bounded: a deep `payload` or `initialTwin` would overflow the stack later, where the
  // answer is validated, stored and sent to the device.
  const json = decodeJson(outcome.body);
  if (!json.ok) {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationInvalidJson(json.reason));
  }
  const decoded = json.value;
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    const what = decoded === null ? 'null' : Array.isArray(decoded) ? 'an array' : typeof decoded;
    return failed(
      DpsErrorCode.CustomAllocationFailed,
      DpsErrorMessage.customAllocationInvalidResponse(`the body is ${what}, not an object`),
    );
  }
  const parsed = parseAllocationResponse(decoded);
  if (!parsed.ok) {
    const reason = parsed.error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationInvalidResponse(reason));
  }
  const response = parsed.value;
  const hub = response.iotHubHostName?.trim();
  if (!hub) {
    return failed(DpsErrorCode.CustomAllocationIotHubNotSpecified, DpsErrorMessage.customAllocationIotHubNotSpecified);
  }
  const linked = linkedHubs.find((name) => name.toLowerCase() === hub.toLowerCase());
  if (!linked) {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationHubNotLinked(hub, linkedHubs));
  }
  // A twin the hub would refuse fails here, as an answer DPS cannot use, not later as an internal error.
  const problem = twinProblem?.(response.initialTwin, outcome.body);
  if (problem) {
    return failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationInvalidResponse(problem));
  }
  const decision: AllocationDecision = { kind: 'assigned', hub: linked };
  if (response.initialTwin !== undefined) decision.initialTwin = response.initialTwin;
  if (response.payload !== undefined) decision.payload = response.payload;
  return decision;
}

export interface WebhookRetryPolicy {
  /** Retries after the first call (DPS: 10). */
  count: number;
  /** Wait before the first retry (DPS: 1 s). */
  initialIntervalMs: number;
  /** Added to the wait for each further retry (DPS: 9 s, so 1 s, 10 s, 19 s, …). */
  incrementMs: number;
}

/** DPS's documented schedule for webhook answers ≥ 429. */
export const DPS_WEBHOOK_RETRY: WebhookRetryPolicy = { count: 10, initialIntervalMs: 1000, incrementMs: 9000 };

export function retryDelayMs(policy: WebhookRetryPolicy, retryIndex: number): number {
  return policy.initialIntervalMs + retryIndex * policy.incrementMs;
}

/** What the registration log and event report about the webhook. */
export interface WebhookReport {
  /** The URL with its query masked, as DPS shows it. */
  url: string;
  /** HTTP status of the last answer; absent after a timeout or connection error. */
  status?: number;
  /** Total time spent calling the webhook, waits between retries excluded. */
  latencyMs: number;
  attempts: number;
  /** `timeout` or `connection-error` when the last call got no answer. */
  failure?: 'timeout' | 'connection-error';
  /** Why the last call failed to connect (for the log: the device only sees DPS's generic message). */
  failureReason?: string;
}

/**
 * The last webhook exchange in full, for the web view (too big for the log): the body DPS sent and
 * the answer it got. The URL is masked; the body carries no keys (`toWebhookView`).
 */
export interface WebhookExchange {
  request: { url: string; body: string };
  /** The last answer; absent after a timeout or a connection error. */
  response?: { status: number; body: string; bodyError?: string };
}

export interface CustomAllocationDeps {
  /** Calls the webhook once; never rejects. */
  call: (url: string, body: string) => Promise<WebhookCallOutcome & { latencyMs: number }>;
  sleep: (ms: number) => Promise<void>;
  retry: WebhookRetryPolicy;
  /** Checks the answer's `initialTwin` against the hub's rules (the emulator passes `initialTwinProblem`). */
  twinProblem?: InitialTwinCheck;
}

/** Calls the webhook, retrying answers ≥ 429 on DPS's schedule, and decides the outcome. */
export async function runCustomAllocation(
  webhookUrl: string,
  request: AllocationRequest,
  maskedUrl: string,
  deps: CustomAllocationDeps,
): Promise<{ decision: AllocationDecision; webhook: WebhookReport; exchange: WebhookExchange }> {
  const body = JSON.stringify(request);
  const report: WebhookReport = { url: maskedUrl, latencyMs: 0, attempts: 0 };
  const exchange: WebhookExchange = { request: { url: maskedUrl, body } };
  for (let retryIndex = 0; ; retryIndex++) {
    const outcome = await deps.call(webhookUrl, body);
    report.attempts++;
    report.latencyMs += outcome.latencyMs;
    delete report.failureReason;
    if (outcome.kind === 'response') {
      report.status = outcome.status;
      delete report.failure;
      exchange.response = { status: outcome.status, body: outcome.body };
      if (outcome.bodyError) exchange.response.bodyError = outcome.bodyError;
    } else {
      delete report.status;
      delete exchange.response;
      report.failure = outcome.kind;
      if (outcome.kind === 'connection-error') report.failureReason = outcome.reason;
    }
    const result = interpretWebhookOutcome(outcome, request.linkedHubs, deps.twinProblem);
    if (result.kind !== 'retry') return { decision: result, webhook: report, exchange };
    if (retryIndex >= deps.retry.count) {
      return {
        decision: failed(DpsErrorCode.CustomAllocationFailed, DpsErrorMessage.customAllocationFailed(result.status)),
        webhook: report,
        exchange,
      };
    }
    await deps.sleep(retryDelayMs(deps.retry, retryIndex));
  }
}
