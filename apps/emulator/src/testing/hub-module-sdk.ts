// azure-iot-device's ModuleClient, unmodified, pointed at an emulated hub with configuration only,
// as the device Client is (hub-sdk.ts): `GatewayHostName=localhost:PORT` in the module's connection
// string (the MQTT or AMQP port: the SDK connects there; its username and token still name the hub)
// and the CA through `setOptions`.
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceMqtt from 'azure-iot-device-mqtt';
import type { HubTarget } from './hub-sdk.js';

const { ModuleClient } = deviceSdk;

export type HubModuleClient = InstanceType<typeof ModuleClient>;

export interface HubModuleOptions {
  hub: string;
  deviceId: string;
  moduleId: string;
  key: string;
  /** `mqtt` (default) or `amqp` (azure-iot-device-amqp's `Amqp`, TLS on the emulator's AMQP port). */
  transport?: 'mqtt' | 'amqp';
}

/** The module connection string the SDK takes, `GatewayHostName` pointing at the emulator's MQTT (or AMQP) port. */
export function moduleConnectionString(emulator: HubTarget, module: HubModuleOptions): string {
  const gateway =
    module.transport === 'amqp' ? emulator.endpoints.amqp?.provisioningHost : emulator.endpoints.mqtt.provisioningHost;
  if (!gateway) throw new Error('the emulator runs without AMQP');
  return `HostName=${module.hub};DeviceId=${module.deviceId};ModuleId=${module.moduleId};SharedAccessKey=${module.key};GatewayHostName=${gateway}`;
}

/** A `ModuleClient` for a module of an emulated hub, options set (not yet opened). */
export async function moduleClient(emulator: HubTarget, module: HubModuleOptions): Promise<HubModuleClient> {
  const transport = module.transport === 'amqp' ? deviceAmqp.Amqp : deviceMqtt.Mqtt;
  const client = ModuleClient.fromConnectionString(moduleConnectionString(emulator, module), transport);
  client.on('error', () => {});
  // setOptions settles asynchronously: an open() before it would connect without the CA.
  await client.setOptions({ ca: emulator.caCertPem });
  return client;
}
