// withEmulator(azure-iothub Client) against an emulator without HTTPS (--no-https): the Client's
// cloud-to-device messages are AMQP and are served; its REST calls (direct methods) fail naming
// the missing listener, and never dial Azure. Before, withEmulator itself threw for want of HTTPS.
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import iothub from 'azure-iothub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../emulator.js';
import { groupDeviceKey, oneHubConfig, tempStateDir, testEmulatorOptions } from '../testing/fixtures.js';
import { provisioningTransport, withEmulator } from './index.js';

const HUB = 'no-https-hub.azure-devices.net';
const state = tempStateDir();
let emulator: Emulator;

beforeAll(async () => {
  emulator = createEmulator(
    testEmulatorOptions(oneHubConfig('0ne000N0HTT', HUB), state.path, { httpsPort: false, webView: false }),
  );
  await emulator.start();
});
afterAll(async () => {
  await emulator?.stop();
  state.remove();
});

it('sends a cloud-to-device message over AMQP; a direct method fails naming https', async () => {
  const id = 'no-https-device';
  const { provisioningHost, transport } = provisioningTransport(provisioningMqtt.Mqtt, emulator);
  await provisioningDevice.ProvisioningDeviceClient.create(
    provisioningHost,
    emulator.idScope,
    transport,
    new symmetricKey.SymmetricKeySecurityClient(id, groupDeviceKey('hashed', id)) as never,
  ).register();
  const client = withEmulator(iothub.Client.fromConnectionString(emulator.hubConnectionString(HUB)), emulator);
  try {
    await client.send(id, 'over AMQP, no HTTPS needed');
    expect(emulator.cloudToDeviceQueue(id, HUB)).toMatchObject([
      { state: 'Enqueued', bytes: 'over AMQP, no HTTPS needed'.length },
    ]);
    await expect(
      client.invokeDeviceMethod(id, { methodName: 'reboot', payload: {}, responseTimeoutInSeconds: 5 }),
    ).rejects.toThrow(
      '@dpskit/emulator/sdk: azure-iothub Client REST calls (invokeDeviceMethod) needs https: the emulator runs without HTTPS',
    );
  } finally {
    await client.close();
  }
});
