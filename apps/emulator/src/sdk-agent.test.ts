// emulatorAgent as a user's test code uses it: the official, unmodified SDKs (service, provisioning
// over HTTPS and both WebSocket transports, the hub registry, the device HTTP transport) pointed at an
// emulator on free ports by that one agent, the only thing each of them is given.
import { createHmac } from 'node:crypto';
import amqpBase from 'azure-iot-amqp-base';
import deviceSdk from 'azure-iot-device';
import deviceHttp from 'azure-iot-device-http';
import httpBase from 'azure-iot-http-base';
import mqttBase from 'azure-iot-mqtt-base';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningAmqp from 'azure-iot-provisioning-device-amqp';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningService from 'azure-iot-provisioning-service';
import symmetricKey from 'azure-iot-security-symmetric-key';
import iothub from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from './emulator.js';
import { emulatorAgent } from './sdk-agent.js';
import { tempStateDir } from './testing/fixtures.js';

const HUB = 'agent-hub.azure-devices.net';
const GROUP_KEY = Buffer.alloc(32, 9).toString('base64');
const deviceKey = (id: string) => createHmac('sha256', Buffer.from(GROUP_KEY, 'base64')).update(id).digest('base64');

/** The SDKs keep their REST client in this field; its `setOptions` is how an agent gets in. */
type WithRestClient = { _restApiClient: { setOptions(options: object): void } };

const state = tempStateDir();
let emulator: Emulator;
beforeAll(async () => {
  emulator = createEmulator({
    config: { idScope: '0ne000A6E47', iotHubs: [{ hostName: HUB }] },
    stateDir: state.path,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    webView: false,
    retryAfterSeconds: 0,
    log: () => {},
  });
  await emulator.start();
  // Enrollments through the service SDK, as a user's test creates them.
  const service = provisioningService.ProvisioningServiceClient.fromConnectionString(
    emulator.serviceConnectionString as string,
  );
  (service as unknown as WithRestClient)._restApiClient.setOptions({ http: { agent: emulatorAgent(emulator) } });
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'agent-group',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY, secondaryKey: GROUP_KEY } },
  } as never);
});
afterAll(async () => {
  await emulator?.stop();
  state.remove();
});

/** Registers with provisioningHost 'localhost', as DPS's global host would be given: no port. */
function provision(registrationId: string, transport: object) {
  return provisioningDevice.ProvisioningDeviceClient.create(
    'localhost',
    emulator.idScope,
    transport as never,
    new symmetricKey.SymmetricKeySecurityClient(registrationId, deviceKey(registrationId)) as never,
  ).register();
}

describe('emulatorAgent: the official SDKs reach the emulator through it alone', () => {
  it('the service SDK wrote the enrollment group (read back through it)', async () => {
    const service = provisioningService.ProvisioningServiceClient.fromConnectionString(
      emulator.serviceConnectionString as string,
    );
    (service as unknown as WithRestClient)._restApiClient.setOptions({ http: { agent: emulatorAgent(emulator) } });
    const group = await service.getEnrollmentGroup('agent-group');
    expect(group.responseBody.enrollmentGroupId).toBe('agent-group');
  });

  it('provisions over HTTPS (provisioningHost "localhost", no port)', async () => {
    const base = new httpBase.Http();
    base.setOptions({ http: { agent: emulatorAgent(emulator) } });
    const result = await provision('agent-http', new provisioningHttp.Http(base));
    expect(result).toMatchObject({ assignedHub: HUB, deviceId: 'agent-http' });
  });

  it('provisions over MQTT on WebSockets', async () => {
    const base = new mqttBase.MqttBase();
    base.setOptions({ ca: emulator.caCertPem, mqtt: { webSocketAgent: emulatorAgent(emulator) } } as never);
    const result = await provision('agent-mqtt-ws', new provisioningMqtt.MqttWs(base as never));
    expect(result).toMatchObject({ assignedHub: HUB, deviceId: 'agent-mqtt-ws' });
  });

  it('provisions over AMQP on WebSockets (the agent carries the CA)', async () => {
    const amqpWs = new provisioningAmqp.AmqpWs(new amqpBase.Amqp(true));
    amqpWs.setTransportOptions({ webSocketAgent: emulatorAgent(emulator) } as never);
    const result = await provision('agent-amqp-ws', amqpWs);
    expect(result).toMatchObject({ assignedHub: HUB, deviceId: 'agent-amqp-ws' });
  });

  it("reaches the hub by its own name: the registry reads a provisioned device's twin, the device sends over HTTPS", async () => {
    await provision('agent-hub-device', new provisioningHttp.Http(httpBaseWith(emulatorAgent(emulator))));
    const registry = iothub.Registry.fromConnectionString(emulator.hubConnectionString(HUB));
    (registry as unknown as WithRestClient)._restApiClient.setOptions({ http: { agent: emulatorAgent(emulator) } });
    const twin = await registry.getTwin('agent-hub-device');
    expect(twin.responseBody.deviceId).toBe('agent-hub-device');

    const device = deviceSdk.Client.fromConnectionString(
      `HostName=${HUB};DeviceId=agent-hub-device;SharedAccessKey=${deviceKey('agent-hub-device')}`,
      deviceHttp.Http,
    );
    // The HTTP transport applies these options at once but never calls back (an SDK bug): not awaited.
    void device.setOptions({ http: { agent: emulatorAgent(emulator) } } as never);
    await device.sendEvent(new deviceSdk.Message('through the agent'));
    expect(emulator.telemetry(HUB, 'agent-hub-device').map((m) => m.body.toString())).toContain('through the agent');
  });

  it("takes an emulator started by the CLI: its ready file's https and the CA's text", async () => {
    const https = emulator.endpoints.https;
    if (!https) throw new Error('the emulator serves HTTPS');
    const agent = emulatorAgent({ https: { host: '0.0.0.0', port: https.port }, ca: emulator.caCertPem });
    const result = await provision('agent-ready-file', new provisioningHttp.Http(httpBaseWith(agent)));
    expect(result).toMatchObject({ assignedHub: HUB, deviceId: 'agent-ready-file' });
  });

  it('says so when the emulator has no HTTPS listener', () => {
    expect(() => emulatorAgent({ endpoints: {}, caCertPem: emulator.caCertPem })).toThrow(
      'emulatorAgent: the emulator runs without HTTPS (httpsPort false or --no-https)',
    );
  });
});

function httpBaseWith(agent: ReturnType<typeof emulatorAgent>) {
  const base = new httpBase.Http();
  base.setOptions({ http: { agent } });
  return base;
}
