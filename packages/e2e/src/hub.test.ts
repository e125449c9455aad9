import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeviceSim } from './harness/device-sim.js';
import { emulatorRegistry } from './harness/registry.js';
import { startTutorialStack, type TutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

// After provisioning: the toaster connects to the hub its policy chose (device-sim on the official
// azure-iot-device SDK), finds the enrollment's initial twin, reports and sends telemetry; the
// official azure-iothub Registry sees it all. The heat pump, rejected, exists in no hub.

let stack: TutorialStack;
beforeAll(async () => {
  stack = await startTutorialStack();
});
afterAll(async () => {
  await stack?.close();
});

const register = (registrationId: string, transport: 'mqtt' | 'http', ...extra: string[]) =>
  runDeviceSim(
    [
      'register',
      ...stack.connectionArgs(transport),
      '--registration-id',
      registrationId,
      '--payload',
      JSON.stringify(TUTORIAL.payload),
      ...extra,
    ],
    { DPS_GROUP_KEY: TUTORIAL.groupKey },
  );

describe('the toaster on its hub', () => {
  it.each(['mqtt', 'http'] as const)(
    'provisioned over %s, connects, finds the initial twin, reports and sends telemetry',
    async (transport) => {
      // Provisioned over HTTPS, the device still reaches its hub over MQTT: on the emulator's MQTT port.
      const hubHost = transport === 'http' ? ['--hub-host', `localhost:${stack.emulator.endpoints.mqtt.port}`] : [];
      const run = await register(TUTORIAL.toaster, transport, '--telemetry', '3', '--json', ...hubHost);
      expect(run.code, run.stderr).toBe(0);
      const outcome = JSON.parse(run.stdout);
      expect(outcome).toMatchObject({
        status: 'assigned',
        assignedHub: TUTORIAL.toasterHub,
        hubSession: { status: 'connected', hub: TUTORIAL.toasterHub, deviceId: TUTORIAL.toaster, telemetrySent: 3 },
      });
      expect(outcome.hubSession.desired).toMatchObject(TUTORIAL.initialTwin.properties.desired);

      const twin = (await emulatorRegistry(stack.emulator).getTwin(TUTORIAL.toaster)).responseBody;
      expect(twin.tags).toEqual(TUTORIAL.initialTwin.tags);
      expect(twin.properties.desired).toMatchObject(TUTORIAL.initialTwin.properties.desired);
      expect(twin.properties.reported).toMatchObject(outcome.hubSession.reported);
      const messages = stack.emulator.telemetry(TUTORIAL.toasterHub, TUTORIAL.toaster).slice(-3);
      expect(messages.map((m) => JSON.parse(m.body.toString()).seq)).toEqual([1, 2, 3]);
      expect(messages.every((m) => m.properties['$.ct'] === 'application/json')).toBe(true);
    },
  );

  it('prints the twin in the tutorial output', async () => {
    const run = await register(TUTORIAL.toaster, 'mqtt', '--connect');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Connecting to IoT hub ${TUTORIAL.toasterHub} as ${TUTORIAL.toaster}`);
    expect(run.stdout).toMatch(/ {2}desired: {2}\{"toastLevel":3,"telemetryIntervalSeconds":10,"\$version":\d+\}/);
  });

  it('the rejected heat pump gets no identity in any hub', async () => {
    const run = await register(TUTORIAL.heatpump, 'mqtt', '--connect', '--json');
    expect(run.code).toBe(1);
    const outcome = JSON.parse(run.stdout);
    expect(outcome).toMatchObject({ status: 'failed', errorCode: 400207 });
    expect(outcome.hubSession).toBeUndefined();
    expect(stack.emulator.hubDevices().map((d) => d.identity.deviceId)).not.toContain(TUTORIAL.heatpump);
    await expect(emulatorRegistry(stack.emulator).get(TUTORIAL.heatpump)).rejects.toMatchObject({
      name: 'DeviceNotFoundError',
    });
  });

  it('a fleet of toasters counts the devices connected to their hub', async () => {
    const run = await runDeviceSim(
      [
        'fleet',
        ...stack.connectionArgs('mqtt'),
        '--count',
        '4',
        '--registration-id-template',
        'contoso-toaster-fleet-{n}',
        '--payload',
        JSON.stringify(TUTORIAL.payload),
        '--telemetry',
        '1',
        '--json',
        '--no-progress',
      ],
      { DPS_GROUP_KEY: TUTORIAL.groupKey },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      byStatus: { assigned: 4 },
      hub: { connected: 4, failed: 0, telemetrySent: 4 },
    });
  });
});
