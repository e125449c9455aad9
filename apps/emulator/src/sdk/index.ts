// `@dpskit/emulator/sdk`: the official Azure SDK clients pointed at the emulator, one call each,
// without the user reaching into the SDKs' private fields. The SDK packages are optional peer
// dependencies: nothing of them loads until a helper needs one. Every helper given no target
// (`undefined`) leaves the client as the SDK built it, so one test suite runs against Azure by
// configuration only.
export { emulatorAgent } from '../sdk-agent.js';
export {
  type CreateDeviceClientOptions,
  createDeviceClient,
  type DeviceClientClass,
  type DeviceX509,
} from './device.js';
export {
  type EventHubConsumerEmulatorOptions,
  type EventHubWebSocket,
  type EventHubWebSocketConstructor,
  eventHubConsumerOptions,
} from './event-hubs.js';
export {
  GLOBAL_PROVISIONING_HOST,
  type ProvisioningTransport,
  type ProvisioningTransportClass,
  provisioningTransport,
} from './provisioning.js';
export { type EmulatorServiceClient, type WithEmulatorOptions, withEmulator } from './service.js';
export { type EmulatorTarget, type EmulatorTargetEndpoint, readyFileTarget } from './target.js';
export type { DeviceTransportArgument, TransportClass } from './transport-kind.js';
