// The official `azure-iot-provisioning-service` SDK, unmodified, pointed at the emulator: the
// connection string the emulator prints, and an https.Agent that trusts its CA and knows its port
// (the SDK itself always connects to 443), given through the SDK transport's own setOptions.
import https from 'node:https';
import type { Emulator } from '@dpskit/emulator';
import provisioningService from 'azure-iot-provisioning-service';

const { ProvisioningServiceClient } = provisioningService;
export type ServiceClient = InstanceType<typeof ProvisioningServiceClient>;

export function emulatorServiceClient(emulator: Emulator): ServiceClient {
  const endpoint = emulator.endpoints.https;
  const connectionString = emulator.serviceConnectionString;
  if (!endpoint || !connectionString) throw new Error('the emulator serves no HTTPS endpoint');
  const client = ProvisioningServiceClient.fromConnectionString(connectionString);
  const agent = Object.assign(new https.Agent({ ca: emulator.caCertPem }), { defaultPort: endpoint.port });
  (client as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent },
  });
  return client;
}
