// The official, unmodified `azure-iot-provisioning-service` SDK pointed at the emulator. The SDK
// builds its client from a connection string and always connects to port 443; the only thing
// injected is an https.Agent (trusting the emulator's CA, defaulting to its port) through the
// transport's own `setOptions`, as the README shows for users.
import https from 'node:https';
import provisioningService from 'azure-iot-provisioning-service';
import type { Emulator } from '../emulator.js';

const { ProvisioningServiceClient } = provisioningService;
export type ServiceClient = InstanceType<typeof ProvisioningServiceClient>;

/**
 * `ProvisioningServiceClient.fromConnectionString(connectionString)` reaching the emulator's HTTPS
 * port (an emulator started by its CLI has no `serviceConnectionString`: give one).
 */
export function serviceClient(
  emulator: Pick<Emulator, 'endpoints' | 'caCertPem'> & Partial<Pick<Emulator, 'serviceConnectionString'>>,
  connectionString = emulator.serviceConnectionString,
): ServiceClient {
  const endpoint = emulator.endpoints.https;
  if (!endpoint || !connectionString) throw new Error('the emulator runs without HTTPS');
  const client = ProvisioningServiceClient.fromConnectionString(connectionString);
  const agent = Object.assign(new https.Agent({ ca: emulator.caCertPem }), { defaultPort: endpoint.port });
  (client as unknown as { _restApiClient: { setOptions(options: object): void } })._restApiClient.setOptions({
    http: { agent },
  });
  return client;
}

/** The error the SDK rejects with: its HTTP status and the service's error body. */
export async function sdkFailure(
  promise: Promise<unknown>,
): Promise<{ status: number; body: Record<string, unknown>; name: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { response?: { statusCode: number }; responseBody?: string };
    return {
      status: e.response?.statusCode ?? 0,
      body: e.responseBody ? (JSON.parse(e.responseBody) as Record<string, unknown>) : {},
      name: e.constructor.name,
    };
  }
  throw new Error('expected the SDK call to fail');
}
