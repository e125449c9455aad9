export { type LatencySummary, percentile, summarizeLatencies } from '@dpskit/node-kit';
export { InvalidOptionError } from './errors.js';
export { type FleetOptions, type FleetProgress, parseTemplates, runFleet } from './fleet.js';
export { type DeriveKeysOptions, type DeriveKeysReport, deriveKeysFromLines, formatDerivedKey } from './keys.js';
export { hintFor } from './output/hints.js';
export { formatSummary } from './output/summary.js';
export { bannerLines, resultLines, statusLine, TutorialPrinter } from './output/tutorial.js';
export { parsePayload } from './payload.js';
export { type RegisterOptions, registerDevice } from './register.js';
export { sdkApiVersion, sdkVersion } from './sdk/modules.js';
export { CANCELLED_ERROR_NAME, type FleetSummary, type OutcomeGroup } from './stats.js';
export { expandTemplate, parseTemplate, type RegistrationIdTemplate } from './template.js';
export {
  DEFAULT_PROVISIONING_HOST,
  type OutcomeStatus,
  type RegistrationOutcome,
  type RegistrationPhase,
  type StatusUpdate,
  type TransportName,
} from './types.js';
