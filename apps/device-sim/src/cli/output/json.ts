import type { RegistrationOutcome } from '../../lib/types.js';

/** The `--json` form of `register`: the outcome as one JSON object on one line. */
export function outcomeJson(outcome: RegistrationOutcome, hint?: string): string {
  return `${JSON.stringify(hint === undefined ? outcome : { ...outcome, hint })}\n`;
}
