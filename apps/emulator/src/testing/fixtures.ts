import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AllocationRequest, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { closedPort } from '@dpskit/vitest-config/closed-port';
import type { EmulatorConfigInput } from '../config/schema.js';
import type { RegistrationEvent } from '../core/events.js';
import { createEmulator, type Emulator, type EmulatorOptions } from '../emulator.js';
import { keepForFailure } from './failure-log.js';
import type { WebhookAnswer } from './webhook-server.js';

export const HUB_A = 'hub-a.azure-devices.net';
/** A consumer group of HUB_A's built-in endpoint besides `$Default`. */
export const HUB_A_CONSUMER_GROUP = 'analytics';
export const HUB_B = 'hub-b.azure-devices.net';
export const HUB_C = 'hub-c.azure-devices.net';
export const ROGUE_HUB = 'rogue-hub.azure-devices.net';
export const ID_SCOPE = '0ne00000A0A';

export const KEYS = {
  hashed: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  static: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  custom: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  unreachable: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  disabled: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  individual: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  blocked: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
};

export const TWIN = { tags: { fleet: 'contoso' }, properties: { desired: { telemetryIntervalSec: 60 } } };
export const WEBHOOK_TWIN = { tags: { deviceType: 'toaster' }, properties: { desired: { state: 'ready' } } };

/** A device key derived from one of the test groups. */
export const groupDeviceKey = (
  group: keyof typeof KEYS,
  registrationId: string,
  which: 'primaryKey' | 'secondaryKey' = 'primaryKey',
) => deriveDeviceKey(KEYS[group][which], registrationId);

/** A config of one hub and one symmetric-key group (KEYS.hashed, `hashed`) allocating to it. */
export function oneHubConfig(idScope: string, hostName: string): EmulatorConfigInput {
  return {
    idScope,
    iotHubs: [{ hostName }],
    enrollmentGroups: [
      {
        enrollmentGroupId: 'hashed-group',
        attestation: { type: 'symmetricKey', symmetricKey: KEYS.hashed },
        allocationPolicy: 'hashed',
        iotHubs: [hostName],
      },
    ],
  };
}

/** The emulator config the transport tests share: one group per allocation policy and case. */
export function testConfig(webhookUrl: string, unreachableWebhookUrl: string): EmulatorConfigInput {
  const symmetricKey = (keys: { primaryKey: string; secondaryKey: string }) => ({
    type: 'symmetricKey' as const,
    symmetricKey: keys,
  });
  return {
    idScope: ID_SCOPE,
    iotHubs: [
      { hostName: HUB_A, consumerGroups: [HUB_A_CONSUMER_GROUP] },
      { hostName: HUB_B, allocationWeight: 3 },
      { hostName: HUB_C },
    ],
    enrollmentGroups: [
      {
        enrollmentGroupId: 'hashed-group',
        attestation: symmetricKey(KEYS.hashed),
        allocationPolicy: 'hashed',
        iotHubs: [HUB_A, HUB_B],
      },
      {
        enrollmentGroupId: 'static-group',
        attestation: symmetricKey(KEYS.static),
        allocationPolicy: 'static',
        iotHubs: [HUB_C],
      },
      {
        enrollmentGroupId: 'custom-group',
        attestation: symmetricKey(KEYS.custom),
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
        iotHubs: [HUB_A, HUB_B],
        initialTwin: TWIN,
      },
      {
        enrollmentGroupId: 'unreachable-group',
        attestation: symmetricKey(KEYS.unreachable),
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl: unreachableWebhookUrl, apiVersion: '2021-10-01' },
      },
      { enrollmentGroupId: 'disabled-group', attestation: symmetricKey(KEYS.disabled), provisioningStatus: 'disabled' },
    ],
    individualEnrollments: [
      {
        registrationId: 'individual-device-1',
        deviceId: 'individual-hub-device-id',
        attestation: symmetricKey(KEYS.individual),
        allocationPolicy: 'static',
        iotHubs: [HUB_A],
      },
      // Its id would also match the hashed group's derived key; the disabled individual enrollment wins.
      {
        registrationId: 'hashed-blocked-device',
        attestation: symmetricKey(KEYS.blocked),
        provisioningStatus: 'disabled',
      },
    ],
  };
}

/**
 * The test webhook's behaviour, chosen by registration id prefix: `wh-400`, `wh-401`, `wh-500`,
 * `wh-429-then-200`, `wh-503-always`, `wh-slow`, `wh-non-json`, `wh-unlinked`, `wh-no-hub`,
 * `wh-string-payload`, `wh-bad-twin` (a twin IoT Hub refuses), `wh-big-int` (an integer past 2^53 in its twin); anything else is assigned with the webhook's twin and a payload that echoes
 * what the device sent.
 */
export function scriptedWebhook(): (request: AllocationRequest) => WebhookAnswer {
  const seen = new Map<string, number>();
  return (request) => {
    const id = request.deviceRuntimeContext.registrationId;
    const count = (seen.get(id) ?? 0) + 1;
    seen.set(id, count);
    if (id.startsWith('wh-400')) return { status: 400, body: { message: 'bad device' } };
    if (id.startsWith('wh-401')) return { status: 401, body: {} };
    if (id.startsWith('wh-500')) return { status: 500, body: 'internal error', contentType: 'text/plain' };
    if (id.startsWith('wh-429-then-200') && count === 1) return { status: 429, body: {} };
    if (id.startsWith('wh-503-always')) return { status: 503, body: {} };
    if (id.startsWith('wh-slow')) return { delayMs: 5_000, body: { iotHubHostName: HUB_A } };
    if (id.startsWith('wh-non-json')) return { body: 'this is not json', contentType: 'text/plain' };
    if (id.startsWith('wh-unlinked')) return { body: { iotHubHostName: ROGUE_HUB } };
    if (id.startsWith('wh-no-hub')) return { body: { iotHubHostName: '' } };
    if (id.startsWith('wh-string-payload')) return { body: { iotHubHostName: HUB_A, payload: 'not an object' } };
    if (id.startsWith('wh-bad-twin')) return { body: { iotHubHostName: HUB_A, initialTwin: { tags: { $bad: 1 } } } };
    // As text: 9007199254740993 is past 2^53 (JSON.parse reads ...992). The payload's is no twin's.
    if (id.startsWith('wh-big-int'))
      return {
        body: `{"payload":{"n":9007199254740993},"iotHubHostName":"${HUB_A}","initialTwin":{"properties":{"desired":{"serial":9007199254740993}}}}`,
      };
    const hub = request.deviceRuntimeContext.payload?.preferredHub === 'b' ? HUB_B : HUB_A;
    return {
      body: {
        iotHubHostName: hub,
        initialTwin: WEBHOOK_TWIN,
        payload: { for: id, received: request.deviceRuntimeContext.payload ?? null, call: count },
      },
    };
  };
}

// Generous enough that a normal webhook call never times out on a loaded 2-core CI machine.
export const WEBHOOK_TIMEOUT_MS = 1_500;

/** Test emulator options: free ports, short waits, a shortened DPS retry schedule, events collected. */
export function testEmulatorOptions(
  config: EmulatorConfigInput,
  stateDir: string,
  overrides: Partial<EmulatorOptions> = {},
): EmulatorOptions {
  return {
    config,
    stateDir,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    // 0: devices poll at once and each poll is answered when the allocation is done.
    retryAfterSeconds: 0,
    webView: { port: 0 },
    webhook: { timeoutMs: WEBHOOK_TIMEOUT_MS, retry: { count: 2, initialIntervalMs: 20, incrementMs: 20 } },
    // Kept, and printed for a test that fails; EMULATOR_TEST_LOG prints every record as it comes.
    log: process.env.EMULATOR_TEST_LOG ? (r) => console.log(JSON.stringify(r)) : keepForFailure,
    logLevel: 'debug',
    ...overrides,
  };
}

/**
 * A webhook URL nothing answers: on `closedPort()` (port 1, checked to refuse connections, so no
 * server of a test running alongside can be given it).
 */
export async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await closedPort()}/api/allocate`;
}

export function tempStateDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'dpskit-emulator-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Starts an emulator and records its registration events. */
export async function startTestEmulator(
  options: EmulatorOptions,
): Promise<{ emulator: Emulator; events: RegistrationEvent[] }> {
  const emulator = createEmulator(options);
  const events: RegistrationEvent[] = [];
  emulator.on('registration', (event) => events.push(event));
  await emulator.start();
  return { emulator, events };
}
