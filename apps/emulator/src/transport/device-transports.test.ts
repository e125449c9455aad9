import { generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey, HUB_A, HUB_B } from '../testing/fixtures.js';
import { register, rejectionOf, type SdkTransport } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import type { TestWebhook } from '../testing/webhook-server.js';

// The transports beside MQTT over TLS and HTTPS, each driven by the official SDK package unmodified,
// over real TLS, against one running emulator: the same registration core behind every wire.

let emulator: Emulator;
let events: RegistrationEvent[];
let webhook: TestWebhook;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // No webhook here is slow on purpose: a minute keeps a loaded machine from failing the toaster.
  ({ emulator, events, webhook, close } = await startTestBedWithWebhook({
    webhook: { timeoutMs: 60_000, retry: { count: 2, initialIntervalMs: 20, incrementMs: 20 } },
  }));
});

afterAll(() => close?.());

const eventFor = (registrationId: string) => events.filter((e) => e.registrationId === registrationId).at(-1);

/**
 * What a refused device sees, per transport: the SDK's own error for the wire. Over MQTT an
 * UnauthorizedError with the DPS body (401000); over AMQP the SDK rejects with the AMQP error the
 * connection was closed with, as it comes (not an Error): condition `amqp:unauthorized-access`, the
 * DPS body (401002) as description, as real DPS sends it.
 */
const expectUnauthorized: Record<string, (err: unknown) => void> = {
  'mqtt-ws': (err) => {
    expect((err as Error).name).toBe('UnauthorizedError');
    expect((err as { result?: unknown }).result).toMatchObject({ errorCode: 401000, message: 'Unauthorized' });
  },
  amqp: (err) => {
    const { condition, description } = err as { condition: string; description: string };
    expect(condition).toBe('amqp:unauthorized-access');
    expect(JSON.parse(description)).toMatchObject({ errorCode: 401002, message: 'IotHubUnauthorizedAccess' });
  },
};
const UNAUTHORIZED_CODE: Record<string, number> = { 'mqtt-ws': 401000, amqp: 401002, 'amqp-ws': 401002 };
expectUnauthorized['amqp-ws'] = expectUnauthorized.amqp as (err: unknown) => void;

describe.each(['mqtt-ws', 'amqp', 'amqp-ws'] as const satisfies readonly SdkTransport[])('%s', (transport) => {
  it('assigns the toaster through the custom allocation webhook, with its payload both ways', async () => {
    const id = `${transport}-toaster-007`;
    const devicePayload = { modelId: 'dtmi:contoso:toaster;1', preferredHub: 'b' };
    const result = await register(emulator, id, groupDeviceKey('custom', id), { transport, payload: devicePayload });
    expect(result).toMatchObject({
      registrationId: id,
      deviceId: id,
      assignedHub: HUB_B,
      status: 'assigned',
      substatus: 'initialAssignment',
      payload: { for: id, received: devicePayload, call: 1 },
    });
    expect(webhook.callsFor(id)).toHaveLength(1);
    expect(eventFor(id)).toMatchObject({ transport, policy: 'custom', outcome: { status: 'assigned' } });
  });

  it('fails the heat pump with 400207 when the webhook answers 400', async () => {
    const id = `wh-400-${transport}-heatpump-088`;
    const err = await rejectionOf(register(emulator, id, groupDeviceKey('custom', id), { transport }));
    expect(err.constructor.name).toBe('DeviceRegistrationFailedError');
    expect(err.result).toMatchObject({
      status: 'failed',
      registrationState: {
        registrationId: id,
        status: 'failed',
        errorCode: 400207,
        errorMessage: 'Custom allocation failed with status code: 400',
      },
    });
    expect(eventFor(id)).toMatchObject({ transport, outcome: { status: 'failed', errorCode: 400207 } });
  });

  it('refuses a wrong key as unauthorized and keeps serving', async () => {
    const id = `${transport}-wrong-key`;
    const err = await rejectionOf(register(emulator, id, generateSymmetricKey(32), { transport }));
    expectUnauthorized[transport]?.(err);
    expect(eventFor(id)).toMatchObject({
      transport,
      outcome: { status: 'unauthorized', errorCode: UNAUTHORIZED_CODE[transport] },
    });
    const after = `${transport}-after-wrong-key`;
    expect(await register(emulator, after, groupDeviceKey('hashed', after), { transport })).toMatchObject({
      status: 'assigned',
      assignedHub: expect.stringMatching(new RegExp(`^(${HUB_A}|${HUB_B})$`)),
    });
  });
});
