import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { createTestCa, createTestDeviceCertificate, pemChain, type TestCertificate } from '../testing/certificates.js';
import { HUB_A, HUB_B, ID_SCOPE, startTestEmulator, tempStateDir, testEmulatorOptions } from '../testing/fixtures.js';
import { deviceClient, expectRefused, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { registerWithCertificate } from '../testing/sdk.js';

// X.509 devices provisioned through DPS connect to their emulated hub with the same certificate,
// through the official azure-iot-device + azure-iot-device-mqtt (`x509=true` connection string,
// `setOptions({ cert, key })`), unmodified, in real TLS handshakes.

let emulator: Emulator;
let stop: () => Promise<void>;
let root: TestCertificate;
let line: TestCertificate;
let solo: TestCertificate;

const sha256 = (pem: string) => new X509Certificate(pem).fingerprint256.replaceAll(':', '');

beforeAll(async () => {
  root = await createTestCa('Hub test root CA');
  line = await createTestCa('Hub test line', { issuer: root });
  solo = await createTestDeviceCertificate('hub-x509-solo');
  const state = tempStateDir();
  ({ emulator } = await startTestEmulator(
    testEmulatorOptions(
      {
        idScope: ID_SCOPE,
        iotHubs: [{ hostName: HUB_A }, { hostName: HUB_B }],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'hub-x509-line',
            attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: line.cert } } } },
            allocationPolicy: 'static',
            iotHubs: [HUB_B],
            initialTwin: { tags: { line: 1 }, properties: { desired: { interval: 30 } } },
          },
        ],
        individualEnrollments: [
          {
            registrationId: 'hub-x509-solo',
            deviceId: 'hub-solo-device',
            attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: solo.cert } } } },
            allocationPolicy: 'static',
            iotHubs: [HUB_A],
          },
        ],
      },
      state.path,
      { amqpPort: 0, webView: false },
    ),
  ));
  stop = async () => {
    await emulator.stop();
    state.remove();
  };
});

afterAll(() => stop?.());

describe('X.509 devices on their hub', () => {
  it('an individual enrollment device: selfSigned identity by its thumbprint; twin, report and telemetry over MQTT', async () => {
    const state = await registerWithCertificate(emulator, 'hub-x509-solo', solo);
    expect(state).toMatchObject({ status: 'assigned', assignedHub: HUB_A, deviceId: 'hub-solo-device' });

    const registry = registryClient(emulator, HUB_A);
    const { responseBody: identity } = await registry.get('hub-solo-device');
    expect(identity.authentication).toEqual({
      symmetricKey: { primaryKey: null, secondaryKey: null },
      x509Thumbprint: { primaryThumbprint: sha256(solo.cert), secondaryThumbprint: sha256(solo.cert) },
      type: 'selfSigned',
    });

    const client = await deviceClient(emulator, { hub: HUB_A, deviceId: 'hub-solo-device', x509: solo });
    const connected = nextHubEvent(emulator, (e) => e.kind === 'connected' && e.deviceId === 'hub-solo-device');
    await client.open();
    try {
      await connected;
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ firmware: '2.0.0' }, (err?: Error) => (err ? reject(err) : resolve())),
      );
      const { responseBody: serviceTwin } = await registry.getTwin('hub-solo-device');
      expect(serviceTwin.properties.reported).toMatchObject({ firmware: '2.0.0' });
      expect(serviceTwin).toMatchObject({ authenticationType: 'selfSigned' });

      const seen = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === 'hub-solo-device');
      await client.sendEvent(new Message(JSON.stringify({ temperature: 20 })));
      await seen;
      expect(emulator.telemetry(HUB_A, 'hub-solo-device').map((m) => m.body.toString())).toEqual([
        JSON.stringify({ temperature: 20 }),
      ]);
    } finally {
      await client.close();
    }
  });

  it('sends telemetry over HTTPS with its certificate (azure-iot-device-http); another certificate is refused', async () => {
    const device = await createTestDeviceCertificate('hub-x509-line-http', { issuer: line });
    await registerWithCertificate(emulator, 'hub-x509-line-http', { cert: pemChain(device, line), key: device.key });
    const client = await deviceClient(emulator, {
      hub: HUB_B,
      deviceId: 'hub-x509-line-http',
      x509: device,
      transport: 'https',
    });
    const seen = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === 'hub-x509-line-http');
    await client.open();
    await client.sendEvent(new Message('over https'));
    expect(await seen).toMatchObject({ transport: 'https', body: 'over https' });
    await client.close();
    await expectRefused(
      emulator,
      { hub: HUB_B, deviceId: 'hub-x509-line-http', x509: solo, transport: 'https' },
      'thumbprint-mismatch',
    );
  });

  it('a group device with an intermediate-signed chain finds its initial twin; the hub checks its thumbprint, not the chain', async () => {
    const device = await createTestDeviceCertificate('hub-x509-line-7', { issuer: line });
    const credentials = { cert: pemChain(device, line), key: device.key };
    const state = await registerWithCertificate(emulator, 'hub-x509-line-7', credentials);
    expect(state).toMatchObject({ status: 'assigned', assignedHub: HUB_B, deviceId: 'hub-x509-line-7' });

    const { responseBody: identity } = await registryClient(emulator, HUB_B).get('hub-x509-line-7');
    expect(identity.authentication).toMatchObject({
      type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: sha256(device.cert), secondaryThumbprint: sha256(device.cert) },
    });

    // With the chain, and with the device certificate alone: IoT Hub's thumbprint check needs only the latter.
    for (const cert of [credentials.cert, device.cert]) {
      const client = await deviceClient(emulator, {
        hub: HUB_B,
        deviceId: 'hub-x509-line-7',
        x509: { cert, key: device.key },
      });
      await client.open();
      try {
        const twin = await client.getTwin();
        expect(twin.properties.desired).toMatchObject({ interval: 30, $version: 1 });
      } finally {
        await client.close();
      }
    }
  });

  it('refuses another certificate with the same CN, a SAS key, no certificate, and the wrong hub, with CONNACK 5', async () => {
    const device = await createTestDeviceCertificate('hub-x509-line-8', { issuer: line });
    await registerWithCertificate(emulator, 'hub-x509-line-8', { cert: pemChain(device, line), key: device.key });
    const twin = await createTestDeviceCertificate('hub-x509-line-8', { issuer: line });

    const id = 'hub-x509-line-8';
    // Same subject, same issuer, another key pair: not this device.
    await expectRefused(emulator, { hub: HUB_B, deviceId: id, x509: twin }, 'thumbprint-mismatch');
    await expectRefused(
      emulator,
      { hub: HUB_B, deviceId: id, key: Buffer.alloc(32, 1).toString('base64') },
      'certificate-missing',
    );
    // The certificate is the device's, the hub is not its hub.
    await expectRefused(emulator, { hub: HUB_A, deviceId: id, x509: device }, 'device-not-found');
    // Another device's certificate for this device id.
    await expectRefused(emulator, { hub: HUB_B, deviceId: id, x509: solo }, 'thumbprint-mismatch');

    // The hub keeps serving the device with its own certificate.
    const client = await deviceClient(emulator, { hub: HUB_B, deviceId: id, x509: device });
    await client.open();
    await client.close();
  });

  it('re-provisioning with a renewed certificate moves the hub identity to the new thumbprint', async () => {
    const first = await createTestDeviceCertificate('hub-x509-line-9', { issuer: line });
    await registerWithCertificate(emulator, 'hub-x509-line-9', { cert: pemChain(first, line), key: first.key });
    const renewed = await createTestDeviceCertificate('hub-x509-line-9', { issuer: line });
    await registerWithCertificate(emulator, 'hub-x509-line-9', { cert: pemChain(renewed, line), key: renewed.key });

    const { responseBody: identity } = await registryClient(emulator, HUB_B).get('hub-x509-line-9');
    expect(identity.authentication?.x509Thumbprint?.primaryThumbprint).toBe(sha256(renewed.cert));
    await expectRefused(emulator, { hub: HUB_B, deviceId: 'hub-x509-line-9', x509: first }, 'thumbprint-mismatch');
    const client = await deviceClient(emulator, { hub: HUB_B, deviceId: 'hub-x509-line-9', x509: renewed });
    await client.open();
    await client.close();
  });

  it('a device created through the registry by thumbprint (azure-iothub x509Thumbprint) connects with its certificate', async () => {
    const manual = await createTestDeviceCertificate('manual-x509');
    const registry = registryClient(emulator, HUB_A);
    await registry.create({
      deviceId: 'manual-x509',
      status: 'enabled',
      authentication: { x509Thumbprint: { primaryThumbprint: new X509Certificate(manual.cert).fingerprint } },
    });
    const client = await deviceClient(emulator, { hub: HUB_A, deviceId: 'manual-x509', x509: manual });
    await client.open();
    try {
      const seen = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === 'manual-x509');
      await client.sendEvent(new Message('hello'));
      await seen;
    } finally {
      await client.close();
    }
  });

  it.each(['amqp', 'amqp-ws'] as const)(
    'over %s (azure-iot-device-amqp): the TLS client certificate authenticates the device, no put-token; another certificate is refused',
    async (transport) => {
      const id = `amqp-x509-${transport}`;
      const own = await createTestDeviceCertificate(id);
      const stranger = await createTestDeviceCertificate(id);
      await registryClient(emulator, HUB_A).create({
        deviceId: id,
        status: 'enabled',
        authentication: { x509Thumbprint: { primaryThumbprint: new X509Certificate(own.cert).fingerprint } },
      });
      const client = await deviceClient(emulator, { hub: HUB_A, deviceId: id, x509: own, transport });
      const connected = nextHubEvent(emulator, (e) => e.kind === 'connected' && e.deviceId === id);
      await client.open();
      try {
        const seen = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
        await client.sendEvent(new Message('over amqp'));
        expect(await connected).toMatchObject({ hub: HUB_A, transport: 'amqp' });
        expect(await seen).toMatchObject({ transport: 'amqp', body: 'over amqp' });
        const twin = await client.getTwin();
        expect(twin.properties.desired).toMatchObject({ $version: 1 });
      } finally {
        await client.close();
      }

      // Same subject, another key pair: the SDK connects (no SASL, no put-token), its first link is refused.
      const refused = nextHubEvent(emulator, (e) => e.kind === 'connect-refused' && e.deviceId === id);
      const impostor = await deviceClient(emulator, { hub: HUB_A, deviceId: id, x509: stranger, transport });
      await impostor.open();
      try {
        const error = await impostor.sendEvent(new Message('refused?')).then(
          () => undefined,
          (err: Error) => err,
        );
        expect(error?.name).toBe('UnauthorizedError');
        expect(await refused).toMatchObject({ reason: 'thumbprint-mismatch', transport: 'amqp' });
      } finally {
        await impostor.close();
      }
      expect(emulator.telemetry(HUB_A, id).map((record) => record.body.toString())).toEqual(['over amqp']);
    },
  );
});
