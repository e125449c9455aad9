import type { FleetSummary } from '../../lib/stats.js';
import { type HintContext, type HubHintContext, hintFor, hubHintFor } from './hints.js';

/**
 * The fleet's summary with `register`'s advice on it: a `hint` on each row of outcomes, and on each
 * error the devices met on their hubs, where the cause is usually on the user's side. A fleet meets
 * the same wrong ports, missing CA and refusing webhooks as one device does, a thousand times over.
 */
export function withHints(
  summary: FleetSummary,
  context: HintContext,
  hubContext: HubHintContext | undefined,
): FleetSummary {
  const outcomes = summary.outcomes.map((group) => {
    const hint = hintFor(group, context);
    return hint === undefined ? group : { ...group, hint };
  });
  if (!summary.hub || !hubContext) return { ...summary, outcomes };
  // The summary keeps no hub per error: without --hub-host, name the one hub when there is one.
  const hub = summary.hubs.length === 1 && summary.hubs[0] ? summary.hubs[0].hub : 'the assigned hub';
  const errors = summary.hub.errors.map((error) => {
    const hint = hubHintFor({ status: 'error', errorName: error.errorName, hub }, hubContext);
    return hint === undefined ? error : { ...error, hint };
  });
  return { ...summary, outcomes, hub: { ...summary.hub, errors } };
}
