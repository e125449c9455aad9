import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type AllocatorHost, startAllocatorHost } from '@dpskit/allocator';
import { type RegistrationOutcome, registerDevice } from '@dpskit/device-sim';
import { createEmulator, type Emulator, type RegistrationEvent } from '@dpskit/emulator';
import { withEmulator } from '@dpskit/emulator/sdk';
import iothub from 'azure-iothub';
import { FIRMWARE_TARGET, initialTwinFor } from '../src/firmware-policy.js';

/** This app's folder (package.json, host.json), from dist/test/. */
const APP_DIR = fileURLToPath(new URL('../../', import.meta.url));
const CURRENT_HUB = 'contoso-fw-current.azure-devices.net';
const LEGACY_HUB = 'contoso-fw-legacy.azure-devices.net';
/** Any base64 key: the enrollment group's key, from which each device's key is derived. */
const GROUP_KEY = Buffer.alloc(64, 7).toString('base64');

/**
 * The whole path a device takes, locally: the app served from this folder by dpskit's local host
 * (as `func start` would), dpskit's DPS emulator calling it as the enrollment group's webhook,
 * and devices registering with the official Azure IoT device SDK (through device-sim).
 */
describe('provisioning by firmware version', () => {
  let host: AllocatorHost;
  let emulator: Emulator;
  let stateDir: string;
  const events: RegistrationEvent[] = [];

  before(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'custom-policy-e2e-'));
    host = await startAllocatorHost({ appDir: APP_DIR, port: 0, log: () => {} });
    emulator = createEmulator({
      stateDir,
      mqttPort: 0,
      httpsPort: 0,
      amqpPort: 0,
      retryAfterSeconds: 0, // poll again at once (DPS says 3 s); keeps the test quick
      log: () => {},
      config: {
        idScope: '0ne00C0FFEE',
        iotHubs: [{ hostName: CURRENT_HUB }, { hostName: LEGACY_HUB }],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'sensors',
            attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY } },
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: host.webhookUrl, apiVersion: '2021-10-01' },
            iotHubs: [CURRENT_HUB, LEGACY_HUB],
          },
        ],
      },
    });
    emulator.on('registration', (event) => events.push(event));
    await emulator.start();
  });

  after(async () => {
    await emulator?.stop();
    await host?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  function register(registrationId: string, firmwareVersion: string, transport: 'mqtt' | 'http') {
    const endpoint = transport === 'mqtt' ? emulator.endpoints.mqtt : emulator.endpoints.https;
    assert.ok(endpoint, `the emulator serves ${transport}`);
    return registerDevice({
      provisioningHost: `localhost:${endpoint.port}`,
      idScope: emulator.idScope,
      registrationId,
      groupKey: GROUP_KEY,
      payload: { firmwareVersion },
      transport,
      ca: emulator.caCertPem,
      timeoutMs: 60_000,
    });
  }

  function eventFor(outcome: RegistrationOutcome): RegistrationEvent {
    const event = events.find((e) => e.registrationId === outcome.registrationId);
    assert.ok(event, `the emulator reported ${outcome.registrationId}`);
    return event;
  }

  it('assigns firmware 2.x to the current hub, with its initial twin (MQTT)', async () => {
    const outcome = await register('sensor-current-001', '2.4.0', 'mqtt');
    assert.equal(outcome.status, 'assigned', outcome.errorMessage);
    assert.equal(outcome.assignedHub, CURRENT_HUB);
    assert.equal(outcome.deviceId, 'sensor-current-001');
    assert.deepEqual(outcome.payload, { firmwareLine: 'current', firmwareTarget: FIRMWARE_TARGET.current });
    assert.deepEqual(eventFor(outcome).outcome.initialTwin, initialTwinFor('current'));
  });

  it('assigns firmware 1.x to the legacy hub, with its initial twin (HTTPS)', async () => {
    const outcome = await register('sensor-legacy-001', '1.8.0', 'http');
    assert.equal(outcome.status, 'assigned', outcome.errorMessage);
    assert.equal(outcome.assignedHub, LEGACY_HUB);
    assert.deepEqual(eventFor(outcome).outcome.initialTwin, initialTwinFor('legacy'));
  });

  it("writes the policy's initial twin into the device's hub, read with azure-iothub's Registry", async () => {
    const outcome = await register('sensor-current-002', '2.5.1', 'http');
    assert.equal(outcome.status, 'assigned', outcome.errorMessage);
    // The SDK dials {hub}:443, a name that does not resolve here: withEmulator takes its requests to
    // the emulator. Against Azure: the hub's iothubowner connection string, and no emulator
    // (withEmulator(registry, undefined) returns the registry untouched).
    const registry = withEmulator(
      iothub.Registry.fromConnectionString(emulator.hubConnectionString(CURRENT_HUB)),
      emulator,
    );
    const twin = (await registry.getTwin('sensor-current-002')).responseBody;
    const expected = initialTwinFor('current');
    assert.deepEqual(twin.tags, expected.tags);
    assert.equal(twin.properties.desired.firmwareTarget, FIRMWARE_TARGET.current);
    assert.equal(
      twin.properties.desired.telemetryIntervalSeconds,
      expected.properties?.desired?.telemetryIntervalSeconds,
    );
  });

  it('fails firmware 0.x as DPS does when the webhook refuses (400207)', async () => {
    const outcome = await register('sensor-old-001', '0.9.1', 'mqtt');
    assert.equal(outcome.status, 'failed');
    assert.equal(outcome.errorCode, 400207);
    assert.equal(outcome.errorMessage, 'Custom allocation failed with status code: 400');
    assert.equal(eventFor(outcome).webhook?.status, 400);
  });
});
