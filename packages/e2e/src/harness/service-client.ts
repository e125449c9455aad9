// The official `azure-iot-provisioning-service` SDK, unmodified, pointed at the emulator as a
// user's tests do it: the connection string the emulator prints, then `withEmulator` from
// `@dpskit/emulator/sdk` (its REST client's agent: the emulator's HTTPS port, trusting its CA).
import type { Emulator } from '@dpskit/emulator';
import { withEmulator } from '@dpskit/emulator/sdk';
import provisioningService from 'azure-iot-provisioning-service';

const { ProvisioningServiceClient } = provisioningService;
export type ServiceClient = InstanceType<typeof ProvisioningServiceClient>;

export function emulatorServiceClient(emulator: Emulator): ServiceClient {
  const connectionString = emulator.serviceConnectionString;
  if (!connectionString) throw new Error('the emulator serves no HTTPS endpoint');
  return withEmulator(ProvisioningServiceClient.fromConnectionString(connectionString), emulator);
}
