// @dpskit/emulator/sdk given the official SDKs as a bundler leaves them minified (esbuild --minify,
// names not kept): the transport classes are `eC`, `nP`…, not `Mqtt`, `Amqp`. The helpers tell them
// by the address each dials (method names survive minification), so they point such a client at
// the emulator as they do the packages' own (before, by class name only: a TypeError).
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../emulator.js';
import { groupDeviceKey, oneHubConfig, tempStateDir, testEmulatorOptions } from '../testing/fixtures.js';
import { createDeviceClient, provisioningTransport } from './index.js';
import { type TransportClass, type TransportKind, transportKind } from './transport-kind.js';

const HUB = 'minified-hub.azure-devices.net';
const KINDS = ['Mqtt', 'MqttWs', 'Amqp', 'AmqpWs', 'Http'] as const;
type Classes = Record<TransportKind, TransportClass>;
interface MinifiedSdk {
  device: Classes;
  provisioning: Classes;
  Client: Parameters<typeof createDeviceClient>[0];
  Message: new (body: string) => object;
  ProvisioningDeviceClient: {
    create(host: string, idScope: string, transport: object, security: object): { register(): Promise<unknown> };
  };
  SymmetricKeySecurityClient: new (registrationId: string, key: string) => object;
}

/** The SDK packages as one CommonJS bundle, minified (what a user's bundled test would run). */
const ENTRY = `
const kinds = (m, a, h) => ({ Mqtt: m.Mqtt, MqttWs: m.MqttWs, Amqp: a.Amqp, AmqpWs: a.AmqpWs, Http: h.Http });
module.exports = {
  device: kinds(require('azure-iot-device-mqtt'), require('azure-iot-device-amqp'), require('azure-iot-device-http')),
  provisioning: kinds(require('azure-iot-provisioning-device-mqtt'), require('azure-iot-provisioning-device-amqp'), require('azure-iot-provisioning-device-http')),
  Client: require('azure-iot-device').Client,
  Message: require('azure-iot-device').Message,
  ProvisioningDeviceClient: require('azure-iot-provisioning-device').ProvisioningDeviceClient,
  SymmetricKeySecurityClient: require('azure-iot-security-symmetric-key').SymmetricKeySecurityClient,
};`;

const state = tempStateDir();
let emulator: Emulator;
let sdk: MinifiedSdk;

beforeAll(async () => {
  const bundled = await build({
    stdin: { contents: ENTRY, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'silent',
  });
  const file = join(state.path, 'sdk.min.cjs');
  writeFileSync(file, bundled.outputFiles[0]?.text ?? '');
  sdk = createRequire(import.meta.url)(file) as MinifiedSdk;
  emulator = createEmulator(testEmulatorOptions(oneHubConfig('0ne000M1N1F', HUB), state.path, { webView: false }));
  await emulator.start();
}, 120_000);
afterAll(async () => {
  await emulator?.stop();
  state.remove();
});

describe('the SDK transports minified', () => {
  it('have lost their names, and each is still told for what it is', () => {
    for (const kind of KINDS) {
      expect(sdk.device[kind].name).not.toBe(kind);
      expect(transportKind(sdk.device[kind])).toBe(kind);
      expect(transportKind(sdk.provisioning[kind])).toBe(kind);
    }
    // A class that dials nothing the helpers know is still none of them.
    expect(transportKind(class Other {})).toBeUndefined();
  });

  it('register a device over MqttWs and send its telemetry over AmqpWs, both through the helpers', async () => {
    const id = 'minified-device';
    const key = groupDeviceKey('hashed', id);
    const { provisioningHost, transport } = provisioningTransport(
      sdk.provisioning.MqttWs as unknown as new () => object,
      emulator,
    );
    await expect(
      sdk.ProvisioningDeviceClient.create(
        provisioningHost,
        emulator.idScope,
        transport,
        new sdk.SymmetricKeySecurityClient(id, key),
      ).register(),
    ).resolves.toMatchObject({ assignedHub: HUB, deviceId: id });
    const device = (await createDeviceClient(
      sdk.Client,
      `HostName=${HUB};DeviceId=${id};SharedAccessKey=${key}`,
      sdk.device.AmqpWs,
      emulator,
    )) as unknown as { open(): Promise<unknown>; sendEvent(m: object): Promise<unknown>; close(): Promise<unknown> };
    try {
      await device.open();
      await device.sendEvent(new sdk.Message('minified, over AmqpWs'));
      expect(emulator.telemetry(HUB, id).map((m) => m.body.toString())).toEqual(['minified, over AmqpWs']);
    } finally {
      await device.close();
    }
  });
});
