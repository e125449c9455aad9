import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import {
  type AllocationResponse,
  decodeJson,
  parseAllocationRequest,
  parseAllocationRequestJson,
  parseAllocationResponse,
} from '@dpskit/contracts/allocation';
import { logFields } from '../log/fields.js';
import type { AllocationDecision, AllocationPolicy } from '../policy/policy.js';
import { tutorialPolicy } from '../policy/tutorial.js';

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The webhook's HTTP side: read the body, validate it with the contract, ask the policy, answer.
 * Success is `200` with the AllocationResponse as JSON; every refusal (unreadable body, invalid
 * request, policy rejection) is a plain-text message like the tutorial's
 * `BadRequestObjectResult(message)`, so that the Logs pane and a curl user see the reason as is.
 * Only a failing policy (a bug in user code) gives 500, which DPS retries.
 */
export function createAllocateHandler(policy: AllocationPolicy = tutorialPolicy): HttpHandler {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    let text: string;
    try {
      text = await request.text();
    } catch (err) {
      return refuse(context, 400, `Request body could not be read: ${errorMessage(err)}`);
    }
    // Decoded once, for the log line and for validation (the depth bound keeps the log line writable).
    // The text goes with the parsed body: the host's JSON line can then often copy it rather than
    // serialise the body again (the same bytes: log/json-line.ts).
    const decoded = decodeJson(text);
    context.info(
      'Request.Body',
      decoded.ok ? logFields({ body: decoded.value }, { body: text }) : logFields({ body: text }),
    );

    if (text.trim() === '') {
      return refuse(context, 400, 'Request body is empty: expected an allocation request as JSON.');
    }
    // Not JSON: the contract's own parse of the text says why, in its words.
    const parsed = decoded.ok ? parseAllocationRequest(decoded.value) : parseAllocationRequestJson(text);
    if (!parsed.ok) return refuse(context, 400, parsed.error.message);

    const allocationRequest = parsed.value;
    const registrationId = allocationRequest.deviceRuntimeContext.registrationId;
    context.info('Linked hubs', logFields({ registrationId, linkedHubs: allocationRequest.linkedHubs }));

    let decision: AllocationDecision;
    try {
      decision = await policy(allocationRequest);
    } catch (err) {
      context.error('Allocation policy threw', logFields({ registrationId, error: errorMessage(err) }));
      return refuse(context, 500, `Allocation policy failed: ${errorMessage(err)}`);
    }

    if (!decision.ok) {
      if (!Number.isInteger(decision.status) || decision.status < 400 || decision.status > 599) {
        return refuse(
          context,
          500,
          `Allocation policy returned an invalid rejection status ${String(decision.status)} (expected 400-599).`,
        );
      }
      context.warn('Rejected', logFields({ registrationId, status: decision.status, reason: decision.message }));
      return refuse(context, decision.status, decision.message);
    }

    // Policies may be plain JavaScript: re-validate so that DPS never gets a body it would not accept.
    const checked = parseAllocationResponse(decision.response);
    if (!checked.ok) {
      return refuse(context, 500, `Allocation policy returned an invalid response: ${checked.error.message}`);
    }
    const response: AllocationResponse = checked.value;
    const hub = response.iotHubHostName;
    if (hub === undefined || hub === null || hub === '') {
      // DPS fails such a registration with 400208; allowed so that a policy can exercise that path.
      context.warn('No hub selected', logFields({ registrationId }));
    } else if (!allocationRequest.linkedHubs.includes(hub)) {
      context.warn('Selected hub is not one of the linked hubs', logFields({ registrationId, iotHubHostName: hub }));
    } else {
      context.info('Selected hub', logFields({ registrationId, iotHubHostName: hub }));
    }
    context.info('Response', logFields({ status: 200, body: response }));
    return { status: 200, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify(response) };
  };
}

/** The function registered by `functions/allocate.ts`: the tutorial's policy. */
export const allocateHandler: HttpHandler = createAllocateHandler(tutorialPolicy);

function refuse(context: InvocationContext, status: number, message: string): HttpResponseInit {
  const log = status >= 500 ? context.error.bind(context) : context.info.bind(context);
  log('Response', logFields({ status, body: message }));
  return { status, headers: { 'content-type': TEXT }, body: message };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
