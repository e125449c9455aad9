import provisioningDevice from 'azure-iot-provisioning-device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey, HUB_A, HUB_B } from '../testing/fixtures.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';

// 200 official-SDK devices at once over each transport beside MQTT/TLS and HTTPS (which mqtt.test.ts
// covers with 250), in this process: every one must come back with its own id, hub and webhook
// payload, and the emulator must have recorded each once. No timing is asserted, and nothing may
// time out on a loaded 2-core machine (other suites running beside this one): the webhook gets a
// minute, the TLS handshakes a minute (the default 10 s closed some of 200 handshakes queued at once
// in this one process: AmqpWs devices failed 'rhea: connection disconnected'), and the SDK's
// per-request timeout (its exported, mutable ProvisioningDeviceConstants.defaultTimeoutInterval,
// 30 s) two.

const { ProvisioningDeviceConstants } = provisioningDevice;
const sdkTimeoutMs = ProvisioningDeviceConstants.defaultTimeoutInterval;

let emulator: Emulator;
let events: RegistrationEvent[];
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ProvisioningDeviceConstants.defaultTimeoutInterval = 120_000;
  ({ emulator, events, close } = await startTestBedWithWebhook({
    webhook: { timeoutMs: 60_000, retry: { count: 2, initialIntervalMs: 20, incrementMs: 20 } },
    limits: { handshakeTimeoutMs: 60_000 },
  }));
});

afterAll(async () => {
  ProvisioningDeviceConstants.defaultTimeoutInterval = sdkTimeoutMs;
  await close?.();
});

describe.each(['mqtt-ws', 'amqp', 'amqp-ws'] as const)('%s: many devices at once', (transport) => {
  it('gives each of 200 concurrent registrations its own outcome, none lost or crossed', async () => {
    const prefix = `fleet-${transport}-`;
    const ids = Array.from({ length: 200 }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
    const results = await Promise.all(
      ids.map((id, i) =>
        register(emulator, id, groupDeviceKey('custom', id), {
          transport,
          payload: { index: i, preferredHub: i % 2 ? 'b' : 'a' },
        }),
      ),
    );
    results.forEach((result, i) => {
      const id = ids[i] as string;
      expect(result).toMatchObject({
        registrationId: id,
        deviceId: id,
        status: 'assigned',
        assignedHub: i % 2 ? HUB_B : HUB_A,
        payload: { for: id, received: { index: i } },
      });
    });
    const fleetEvents = events.filter((e) => e.registrationId.startsWith(prefix));
    expect(new Set(fleetEvents.map((e) => e.registrationId)).size).toBe(200);
    expect(fleetEvents.every((e) => e.transport === transport)).toBe(true);
    expect(emulator.registrations().filter((r) => r.registrationId.startsWith(prefix))).toHaveLength(200);
  });
});
