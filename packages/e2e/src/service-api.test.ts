import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeviceSim } from './harness/device-sim.js';
import { startTutorialStack, type TutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

// The tutorial as users' own test code sets it up: the emulator starts without enrollments, the
// test creates the enrollment group with the official service SDK, device-sim (the official
// device SDK) provisions, the allocator (the real Function, served locally) decides, and the test
// reads the registration states back through the service SDK.

let stack: TutorialStack;

beforeAll(async () => {
  stack = await startTutorialStack({ enrollmentsVia: 'service-api' });
});

afterAll(async () => {
  await stack?.close();
});

const register = (registrationId: string) =>
  runDeviceSim(
    [
      'register',
      ...stack.connectionArgs('mqtt'),
      '--registration-id',
      registrationId,
      '--payload',
      JSON.stringify(TUTORIAL.payload),
      '--json',
    ],
    { DPS_GROUP_KEY: TUTORIAL.groupKey },
  );

describe('the tutorial with its enrollment group created through the service API', () => {
  it('the group exists only because the SDK created it', async () => {
    const { responseBody } = await stack.serviceClient.getEnrollmentGroup(TUTORIAL.enrollmentGroupId);
    expect(responseBody).toMatchObject({
      enrollmentGroupId: TUTORIAL.enrollmentGroupId,
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: stack.allocator.webhookUrl, apiVersion: '2021-10-01' },
    });
    expect(stack.emulator.seeded).toEqual([]);
  });

  it('assigns the toaster through the allocator; its registration state reads back as the device got it', async () => {
    const run = await register(TUTORIAL.toaster);
    expect(run.code, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout) as { registrationState: Record<string, unknown> };
    expect(outcome).toMatchObject({ status: 'assigned', assignedHub: TUTORIAL.toasterHub });
    const { responseBody } = await stack.serviceClient.getDeviceRegistrationState(TUTORIAL.toaster);
    const { symmetricKey: _s, ...deviceGot } = outcome.registrationState;
    expect(responseBody).toEqual(deviceGot);
  });

  it('refuses the heat pump with 400207, and the service API reports the same record', async () => {
    const run = await register(TUTORIAL.heatpump);
    expect(run.code).toBe(1);
    const { responseBody } = await stack.serviceClient.getDeviceRegistrationState(TUTORIAL.heatpump);
    expect(responseBody).toMatchObject({
      registrationId: TUTORIAL.heatpump,
      status: 'failed',
      errorCode: 400207,
      errorMessage: 'Custom allocation failed with status code: 400',
    });
  });

  it('a group disabled through the SDK makes the next registration disabled', async () => {
    const { responseBody: current } = await stack.serviceClient.getEnrollmentGroup(TUTORIAL.enrollmentGroupId);
    await stack.serviceClient.createOrUpdateEnrollmentGroup({ ...current, provisioningStatus: 'disabled' });
    const run = await register(TUTORIAL.toaster);
    expect(run.code).not.toBe(0);
    const { responseBody } = await stack.serviceClient.getDeviceRegistrationState(TUTORIAL.toaster);
    expect(responseBody).toMatchObject({ registrationId: TUTORIAL.toaster, status: 'disabled' });
  });
});
