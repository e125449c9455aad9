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
export type {
  HubConnectOptions,
  HubEvent,
  HubSession,
  StayCounts,
  StayOptions,
} from './lib/hub.js';
export { type DeriveKeysOptions, type DeriveKeysReport, deriveKeysFromLines, formatDerivedKey } from './lib/keys.js';
export { parsePayload } from './lib/payload.js';
export { type RegisterOptions, registerDevice } from './lib/register.js';
export { sdkApiVersion, sdkVersion } from './lib/sdk/modules.js';
export { CANCELLED_ERROR_NAME, type FleetSummary, type OutcomeGroup } from './lib/stats.js';
export { ANY_METHOD, type MethodAnswer, parseMethodAnswer } from './lib/stay-options.js';
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

/**
 * Connects a device that has its hub identity to its hub (`azure-iot-device` over MQTT): reads its
 * twin, reports, sends telemetry, and with `stay` stays until `signal` aborts (see README: Staying
 * on the hub). Loads the hub SDK on first call, as `registerDevice` does for `connect`.
 */
export async function connectToHub(
  options: import('./lib/hub.js').HubConnectOptions,
): Promise<import('./lib/hub.js').HubSession> {
  return (await import('./lib/hub.js')).connectToHub(options);
}
