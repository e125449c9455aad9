import type { AllocatorLogRecord } from '@dpskit/allocator';
import { TRANSPORTS, type TransportName } from '@dpskit/device-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeviceSim } from './harness/device-sim.js';
import { startTutorialStack, type TutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

// The tutorial "Use custom allocation policies with DPS", on one machine: the real emulator, the
// allocator served locally with its function key, and device-sim on the official device SDK.

let stack: TutorialStack;

beforeAll(async () => {
  stack = await startTutorialStack();
});

afterAll(async () => {
  await stack?.close();
});

function deviceArgs(transport: TransportName, registrationId: string): string[] {
  return [
    'register',
    ...stack.connectionArgs(transport),
    '--registration-id',
    registrationId,
    '--payload',
    JSON.stringify(TUTORIAL.payload),
  ];
}

/** The allocator's log lines of the invocation that handled `registrationId`. */
function invocationLog(registrationId: string): AllocatorLogRecord[] {
  const request = stack.allocatorLog.findLast(
    (r) =>
      r.msg === 'Request.Body' &&
      (r.data?.body as { deviceRuntimeContext?: { registrationId?: string } } | undefined)?.deviceRuntimeContext
        ?.registrationId === registrationId,
  );
  expect(request, `the allocator logged no request for ${registrationId}`).toBeDefined();
  return stack.allocatorLog.filter((r) => r.invocationId === request?.invocationId);
}

// Every transport the SDK offers: MQTT and AMQP, each on TLS and on WebSockets, and HTTPS.
describe.each(TRANSPORTS)('the tutorial over %s', (transport) => {
  it('assigns contoso-toaster-007 to the toasters hub, and the allocator receives its payload', async () => {
    const run = await runDeviceSim([...deviceArgs(transport, TUTORIAL.toaster), '--json'], {
      DPS_GROUP_KEY: TUTORIAL.groupKey,
    });
    expect(run.code, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout);
    expect(outcome).toMatchObject({
      registrationId: TUTORIAL.toaster,
      transport,
      status: 'assigned',
      assignedHub: TUTORIAL.toasterHub,
      deviceId: TUTORIAL.toaster,
      registrationState: { status: 'assigned', substatus: expect.any(String) },
    });

    const log = invocationLog(TUTORIAL.toaster);
    const body = log.find((r) => r.msg === 'Request.Body')?.data?.body as Record<string, unknown>;
    expect(body).toMatchObject({
      enrollmentGroup: {
        enrollmentGroupId: TUTORIAL.enrollmentGroupId,
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'custom',
        customAllocationDefinition: { apiVersion: '2021-10-01', webhookUrl: expect.stringMatching(/\?\*\*\*\*$/) },
      },
      deviceRuntimeContext: { registrationId: TUTORIAL.toaster, symmetricKey: {}, payload: TUTORIAL.payload },
      linkedHubs: [TUTORIAL.toasterHub],
    });
    expect(JSON.stringify(body)).not.toContain(TUTORIAL.groupKey);
    expect(log.find((r) => r.msg === 'Response')?.data).toEqual({
      status: 200,
      body: { iotHubHostName: TUTORIAL.toasterHub },
    });
  });

  it('rejects contoso-heatpump-088 with 400207, and the allocator logs why', async () => {
    const run = await runDeviceSim([...deviceArgs(transport, TUTORIAL.heatpump), '--json'], {
      DPS_GROUP_KEY: TUTORIAL.groupKey,
    });
    expect(run.code, run.stderr).toBe(1);
    const outcome = JSON.parse(run.stdout);
    expect(outcome).toMatchObject({
      registrationId: TUTORIAL.heatpump,
      status: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 400',
      registrationState: { status: 'failed', errorCode: 400207 },
    });
    expect(outcome.assignedHub).toBeUndefined();

    const log = invocationLog(TUTORIAL.heatpump);
    expect(log.find((r) => r.msg === 'Rejected')?.data).toMatchObject({ reason: 'Unrecognized device registration.' });
    expect(log.find((r) => r.msg === 'Response')?.data).toEqual({
      status: 400,
      body: 'Unrecognized device registration.',
    });
  });

  it("prints the tutorial's device output", async () => {
    const toaster = await runDeviceSim(deviceArgs(transport, TUTORIAL.toaster), { DPS_GROUP_KEY: TUTORIAL.groupKey });
    expect(toaster.code, toaster.stderr).toBe(0);
    expect(toaster.stdout).toContain('Provisioning API Version');
    expect(toaster.stdout).toContain('Registering Device');
    expect(toaster.stdout).toContain('Provisioning Status: PROV_DEVICE_REG_STATUS_ASSIGNING');
    expect(toaster.stdout).toContain(
      `Registration Information received from service: ${TUTORIAL.toasterHub}, deviceId: ${TUTORIAL.toaster}`,
    );

    const heatpump = await runDeviceSim(deviceArgs(transport, TUTORIAL.heatpump), { DPS_GROUP_KEY: TUTORIAL.groupKey });
    expect(heatpump.code).toBe(1);
    expect(heatpump.stdout + heatpump.stderr).toContain('Custom allocation failed with status code: 400');
    expect(heatpump.stdout + heatpump.stderr).toContain('400207');
  });
});

describe('the emulator saw the tutorial as DPS would', () => {
  it('called the webhook for every registration and recorded each outcome', () => {
    const custom = stack.registrations.filter((e) => e.policy === 'custom');
    expect(custom.length).toBeGreaterThanOrEqual(4 * TRANSPORTS.length);
    // Each transport's devices reached the one registration core, named by their wire.
    expect(new Set(custom.map((e) => e.transport))).toEqual(new Set(['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https']));
    for (const event of custom) {
      expect(event.webhook).toBeDefined();
      const expected = event.registrationId === TUTORIAL.toaster ? 'assigned' : 'failed';
      expect(event.outcome.status).toBe(expected);
    }
  });
});

describe('a mixed fleet', () => {
  it('assigns every toaster and rejects every heat pump', async () => {
    const run = await runDeviceSim(
      [
        'fleet',
        ...stack.connectionArgs('mqtt'),
        '--count',
        '40',
        '--concurrency',
        '20',
        '--registration-id-template',
        'fleet-contoso-toaster-{n:3},fleet-contoso-heatpump-{n:3}',
        '--json',
      ],
      { DPS_GROUP_KEY: TUTORIAL.groupKey },
    );
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({
      requested: 40,
      completed: 40,
      byStatus: { assigned: 20, failed: 20, disabled: 0, error: 0 },
      hubs: [{ hub: TUTORIAL.toasterHub, count: 20 }],
    });
    expect(summary.outcomes).toContainEqual(
      expect.objectContaining({ status: 'failed', errorCode: 400207, count: 20 }),
    );
    expect(summary.latencyMs.count).toBe(40);
  });
});
