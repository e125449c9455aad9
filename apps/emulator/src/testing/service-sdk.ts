// The official, unmodified `azure-iot-provisioning-service` SDK pointed at the emulator as users do
// it: `fromConnectionString`, then `withEmulator` (@dpskit/emulator/sdk), which gives its REST
// client an agent to the emulator's HTTPS listener trusting its CA (the SDK always dials port 443).
import provisioningService from 'azure-iot-provisioning-service';
import type { Emulator } from '../emulator.js';
import { withEmulator } from '../sdk/index.js';

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
  if (!emulator.endpoints.https || !connectionString) throw new Error('the emulator runs without HTTPS');
  return withEmulator(ProvisioningServiceClient.fromConnectionString(connectionString), emulator);
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
