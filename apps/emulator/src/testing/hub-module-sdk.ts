// azure-iot-device's ModuleClient, unmodified, pointed at an emulated hub through the package's
// public helper (`@dpskit/emulator/sdk` createDeviceClient, which takes ModuleClient as it takes
// Client): the module's connection string as against Azure, the emulator as the target.
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import { createDeviceClient } from '../sdk/index.js';
import type { HubTarget } from './hub-sdk.js';

const { ModuleClient } = deviceSdk;

export type HubModuleClient = InstanceType<typeof ModuleClient>;

const TRANSPORTS = {
  mqtt: deviceMqtt.Mqtt,
  'mqtt-ws': deviceMqtt.MqttWs,
  amqp: deviceAmqp.Amqp,
  'amqp-ws': deviceAmqp.AmqpWs,
  // What azure-iot-device-http sends for a module is refused, as by IoT Hub (docs/hubs.md).
  http: deviceHttp.Http,
} as const;

export interface HubModuleOptions {
  hub: string;
  deviceId: string;
  moduleId: string;
  key: string;
  /** `mqtt` (default), `mqtt-ws`, `amqp`, `amqp-ws` or `http`. */
  transport?: keyof typeof TRANSPORTS;
}

/** A `ModuleClient` for a module of an emulated hub, options set (not yet opened). */
export async function moduleClient(emulator: HubTarget, module: HubModuleOptions): Promise<HubModuleClient> {
  const client = await createDeviceClient(
    ModuleClient,
    `HostName=${module.hub};DeviceId=${module.deviceId};ModuleId=${module.moduleId};SharedAccessKey=${module.key}`,
    TRANSPORTS[module.transport ?? 'mqtt'],
    emulator,
  );
  client.on('error', () => {});
  return client;
}
