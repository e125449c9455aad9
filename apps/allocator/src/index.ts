export type {
  AllocationRequest,
  AllocationResponse,
  DevicePayload,
  DeviceRuntimeContext,
  EnrollmentGroup,
  IndividualEnrollment,
  InitialTwin,
  TwinCollection,
  X509CertificateInfo,
  X509RuntimeContext,
} from '@dpskit/contracts';
export type { LogLevel as AllocatorLogLevel } from '@dpskit/node-kit';
export { allocateHandler, createAllocateHandler } from './handler/allocate.js';
export {
  ALLOCATE_FUNCTION,
  type AllocatorHost,
  type AllocatorHostOptions,
  DEFAULT_PORT,
  type ServedFunction,
  startAllocatorHost,
} from './local-host/allocator-host.js';
export { generateFunctionKey } from './local-host/function-key.js';
export { type FunctionApp, FunctionAppError, loadFunctionApp } from './local-host/registry.js';
export { DEFAULT_HOST_LIMITS, type HostLimits } from './local-host/server.js';
export { type LogFields, logFields } from './log/fields.js';
export { formatHumanLine, formatJsonLine } from './log/format.js';
export type { AllocatorLogRecord, AllocatorLogSink } from './log/record.js';
export { CertificateMessage, certificatePolicy } from './policy/certificate.js';
export {
  type AllocationAccepted,
  type AllocationDecision,
  type AllocationPolicy,
  type AllocationRejected,
  accept,
  reject,
} from './policy/policy.js';
export { TutorialMessage, tutorialPolicy } from './policy/tutorial.js';
export { type AllocationFunctionOptions, registerAllocationFunction } from './registration/allocation-function.js';
export { type AuthLevel, type HttpFunctionDefinition, httpFunction } from './registration/http-function.js';
