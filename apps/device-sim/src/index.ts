export { type LatencySummary, percentile, summarizeLatencies } from '@dpskit/node-kit';
export { hintFor } from './cli/output/hints.js';
export { formatSummary } from './cli/output/summary.js';
export { bannerLines, resultLines, statusLine, TutorialPrinter } from './cli/output/tutorial.js';
export {
  type CertificateOptions,
  type CertificateSummary,
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  type IssuedCertificate,
  splitPemCertificates,
  summarizeCertificate,
} from './lib/certificates.js';
export { InvalidOptionError } from './lib/errors.js';
export { type FleetOptions, type FleetProgress, runFleet } from './lib/fleet.js';
export { type DeriveKeysOptions, type DeriveKeysReport, deriveKeysFromLines, formatDerivedKey } from './lib/keys.js';
export { parsePayload } from './lib/payload.js';
export { type RegisterOptions, registerDevice } from './lib/register.js';
export { sdkApiVersion, sdkVersion } from './lib/sdk/modules.js';
export { CANCELLED_ERROR_NAME, type FleetSummary, type OutcomeGroup } from './lib/stats.js';
export { expandTemplate, parseTemplate, parseTemplates, type RegistrationIdTemplate } from './lib/template.js';
export {
  DEFAULT_PROVISIONING_HOST,
  type OutcomeStatus,
  type RegistrationOutcome,
  type RegistrationPhase,
  type StatusUpdate,
  TRANSPORTS,
  type TransportName,
} from './lib/types.js';
