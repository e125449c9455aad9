// azure-iot-device's ModuleClient, unmodified, pointed at an emulated hub with configuration only,
// as the device Client is (hub-sdk.ts): `GatewayHostName=localhost:PORT` in the module's connection
// string (the SDK connects there; its username and token still name the hub) and the CA through
// `setOptions`.
import deviceSdk from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import type { HubTarget } from './hub-sdk.js';

const { ModuleClient } = deviceSdk;

export type HubModuleClient = InstanceType<typeof ModuleClient>;

/** The module connection string the SDK takes, `GatewayHostName` pointing at the emulator's MQTT port. */
export function moduleConnectionString(
  emulator: HubTarget,
  module: { hub: string; deviceId: string; moduleId: string; key: string },
): string {
  return `HostName=${module.hub};DeviceId=${module.deviceId};ModuleId=${module.moduleId};SharedAccessKey=${module.key};GatewayHostName=${emulator.endpoints.mqtt.provisioningHost}`;
}

/** A `ModuleClient` over MQTT for a module of an emulated hub, options set (not yet opened). */
export async function moduleClient(
  emulator: HubTarget,
  module: { hub: string; deviceId: string; moduleId: string; key: string },
): Promise<HubModuleClient> {
  const client = ModuleClient.fromConnectionString(moduleConnectionString(emulator, module), deviceMqtt.Mqtt);
  client.on('error', () => {});
  // setOptions settles asynchronously: an open() before it would connect without the CA.
  await client.setOptions({ ca: emulator.caCertPem });
  return client;
}
