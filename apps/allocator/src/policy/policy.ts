import type { AllocationRequest, AllocationResponse } from '@dpskit/contracts';

/** The webhook assigns the device: answered with 200 and `response` as the JSON body. */
export interface AllocationAccepted {
  ok: true;
  response: AllocationResponse;
}

/**
 * The webhook refuses the device: answered with `status` and `message` as a plain-text body, as
 * the tutorial's `BadRequestObjectResult(message)` does. DPS turns 401 into 400209, statuses of
 * 429 and above into retries, and any other status into 400207 "Custom allocation failed with
 * status code: N", so the status is the only part of a rejection DPS acts on.
 */
export interface AllocationRejected {
  ok: false;
  /** An HTTP error status, 400-599. */
  status: number;
  message: string;
}

export type AllocationDecision = AllocationAccepted | AllocationRejected;

/**
 * A custom allocation policy: a decision over the already validated webhook request, free of HTTP
 * and logging so that it can be unit-tested on plain objects. It may be async (for example to look
 * the device up in a database).
 */
export type AllocationPolicy = (request: AllocationRequest) => AllocationDecision | Promise<AllocationDecision>;

export function accept(response: AllocationResponse): AllocationAccepted {
  return { ok: true, response };
}

export function reject(message: string, status = 400): AllocationRejected {
  return { ok: false, status, message };
}
