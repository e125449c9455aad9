export {
  jsonLineSink,
  type LogLevel,
  type LogRecord as EmulatorLogRecord,
  type LogSink,
  PortError,
  prettySink,
} from '@dpskit/node-kit';
export { WebhookClient, type WebhookClientOptions } from './allocation/webhook.js';
export {
  TUTORIAL_GROUP_ID,
  TUTORIAL_GROUP_KEY,
  TUTORIAL_HUBS,
  TUTORIAL_ID_SCOPE,
  tutorialConfig,
} from './config/defaults.js';
export { ConfigError, loadConfigFile, parseConfig, parseConfigText } from './config/load.js';
export type { EmulatorConfig, EmulatorConfigInput } from './config/schema.js';
export { emulatorConfigSchema } from './config/schema.js';
export type { SeedAction, SeedReport } from './config/seed.js';
export {
  buildAllocationRequest,
  DPS_WEBHOOK_RETRY,
  interpretWebhookOutcome,
  type WebhookCallOutcome,
  type WebhookReport,
  type WebhookRetryPolicy,
} from './core/allocation/custom.js';
export { pickHashed } from './core/allocation/hashed.js';
export type { AttestationFailureReason } from './core/attestation.js';
export type { DeviceTransport, RegistrationEvent, RegistrationOutcome } from './core/events.js';
export { DEFAULT_ISSUED_CERTIFICATE_DAYS, IssuingCaError } from './core/issuing-ca.js';
export type { EnrollmentRef, LinkedHub } from './core/model.js';
export {
  DEFAULT_SERVICE_POLICIES,
  OWNER_POLICY_NAME,
  SERVICE_RIGHTS,
  type ServiceRight,
  type SharedAccessPolicy,
  serviceConnectionString,
  WELL_KNOWN_SERVICE_KEY,
} from './core/service-auth.js';
export {
  type CloudToDeviceMessage,
  type CloudToDeviceQueued,
  type CloudToDeviceQueueEntry,
  createEmulator,
  type Emulator,
  type EmulatorEndpoint,
  type EmulatorOptions,
  type GeneratedKeysInfo,
} from './emulator.js';
export {
  DEFAULT_HUB_POLICIES,
  HUB_OWNER_POLICY_NAME,
  HUB_RIGHTS,
  type HubEvent,
  type HubPolicy,
  type HubRight,
  WELL_KNOWN_HUB_KEY,
} from './hub/core/hub-service.js';
export type { DeviceIdentity, HubDevice } from './hub/core/identity.js';
export type { HubModule, ModuleIdentity } from './hub/core/modules.js';
export type { TelemetryRecord } from './hub/core/store.js';
export type { JsonObject, JsonValue, TwinState } from './hub/core/twin.js';
export { type EmulatorAgentTarget, emulatorAgent } from './sdk-agent.js';
export { StateDirInUseError } from './state-claim.js';
