import {
  COSMOS_ETAG_PATTERN,
  createRegistrationSasToken,
  createSasToken,
  DPS_TIMESTAMP_PATTERN,
  DpsErrorCode,
  decodeRegistrationEtag,
  generateSymmetricKey,
  registrationResource,
} from '@dpskit/contracts';
import provisioningDevice from 'azure-iot-provisioning-device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pickHashed } from '../core/allocation/hashed.js';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { startCliEmulator } from '../testing/cli-process.js';
import {
  closedPortUrl,
  groupDeviceKey,
  HUB_A,
  HUB_B,
  HUB_C,
  ID_SCOPE,
  KEYS,
  ROGUE_HUB,
  TWIN,
  testConfig,
  WEBHOOK_TIMEOUT_MS,
  WEBHOOK_TWIN,
} from '../testing/fixtures.js';
import { fixedTokenSecurityClient, register, rejectionOf } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import type { TestWebhook } from '../testing/webhook-server.js';

// Everything here runs the official azure-iot-provisioning-device(-mqtt) packages, unmodified,
// over real TLS against a running emulator.

const { ProvisioningDeviceConstants } = provisioningDevice;

let emulator: Emulator;
let events: RegistrationEvent[];
let webhook: TestWebhook;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ emulator, events, webhook, close } = await startTestBedWithWebhook({ httpsPort: null }));
});

afterAll(() => close?.());

const eventFor = (registrationId: string) => events.filter((e) => e.registrationId === registrationId).at(-1);

describe('MQTT: assignment by policy', () => {
  it('assigns by the weighted hash over the enrollment hubs, deterministically', async () => {
    const ids = ['hashed-dev-1', 'hashed-dev-2', 'hashed-dev-3', 'hashed-dev-4'];
    const results = await Promise.all(ids.map((id) => register(emulator, id, groupDeviceKey('hashed', id))));
    for (const [i, result] of results.entries()) {
      const id = ids[i] as string;
      expect(result).toMatchObject({
        registrationId: id,
        deviceId: id,
        status: 'assigned',
        substatus: 'initialAssignment',
        symmetricKey: { enrollmentGroupId: 'hashed-group' },
      });
      expect(result.assignedHub).toBe(
        pickHashed(id, [
          { hostName: HUB_A, allocationWeight: 1 },
          { hostName: HUB_B, allocationWeight: 3 },
        ]),
      );
      expect(result.createdDateTimeUtc).toMatch(DPS_TIMESTAMP_PATTERN);
      expect(decodeRegistrationEtag(String(result.etag))).toMatch(COSMOS_ETAG_PATTERN);
      expect(result.payload).toBeUndefined();
    }
    expect(eventFor('hashed-dev-1')).toMatchObject({
      transport: 'mqtt',
      policy: 'hashed',
      enrollment: { kind: 'group', id: 'hashed-group' },
    });
  });

  it('assigns the one hub of a static enrollment', async () => {
    const result = await register(emulator, 'static-dev-1', groupDeviceKey('static', 'static-dev-1'));
    expect(result).toMatchObject({ status: 'assigned', assignedHub: HUB_C, deviceId: 'static-dev-1' });
  });

  it('accepts the secondary key, and uses an individual enrollment with its deviceId over any group', async () => {
    const secondary = await register(
      emulator,
      'static-dev-2',
      groupDeviceKey('static', 'static-dev-2', 'secondaryKey'),
    );
    expect(secondary.assignedHub).toBe(HUB_C);
    const individual = await register(emulator, 'individual-device-1', KEYS.individual.primaryKey);
    expect(individual).toMatchObject({ status: 'assigned', assignedHub: HUB_A, deviceId: 'individual-hub-device-id' });
    expect(individual.symmetricKey).toBeUndefined();
  });
});

describe('MQTT: custom allocation webhook', () => {
  it('delivers the device payload to the webhook and returns its hub, payload and twin', async () => {
    const devicePayload = { modelId: 'dtmi:contoso:toaster;1', preferredHub: 'b', firmware: 'fünf' };
    const result = await register(emulator, 'toaster-007', groupDeviceKey('custom', 'toaster-007'), {
      payload: devicePayload,
    });
    expect(result).toMatchObject({
      registrationId: 'toaster-007',
      assignedHub: HUB_B,
      deviceId: 'toaster-007',
      status: 'assigned',
      substatus: 'initialAssignment',
      payload: { for: 'toaster-007', received: devicePayload, call: 1 },
    });

    const [call] = webhook.callsFor('toaster-007');
    expect(call?.method).toBe('POST');
    expect(call?.url).toBe('/api/allocate?code=test-function-key');
    expect(call?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(call?.body).toEqual({
      enrollmentGroup: expect.objectContaining({
        enrollmentGroupId: 'custom-group',
        attestation: { type: 'symmetricKey' },
        capabilities: { iotEdge: false },
        provisioningStatus: 'enabled',
        reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
        allocationPolicy: 'custom',
        iotHubs: [HUB_A, HUB_B],
        initialTwin: TWIN,
        customAllocationDefinition: { webhookUrl: webhook.url.replace(/\?.*$/, '?****'), apiVersion: '2021-10-01' },
      }),
      deviceRuntimeContext: { registrationId: 'toaster-007', symmetricKey: {}, payload: devicePayload },
      linkedHubs: [HUB_A, HUB_B],
    });
    expect(call?.rawBody).not.toContain(KEYS.custom.primaryKey);
    expect(call?.body.enrollmentGroup?.etag).toMatch(/^"[0-9a-f-]{36}"$/);

    expect(eventFor('toaster-007')).toMatchObject({
      policy: 'custom',
      webhook: { status: 200, attempts: 1, url: webhook.url.replace(/\?.*$/, '?****') },
      outcome: { status: 'assigned', assignedHub: HUB_B, initialTwin: WEBHOOK_TWIN },
    });
  });

  const failures: [string, number, string][] = [
    ['wh-400-dev', DpsErrorCode.CustomAllocationFailed, 'Custom allocation failed with status code: 400'],
    ['wh-500-dev', DpsErrorCode.CustomAllocationFailed, 'Custom allocation failed with status code: 500'],
    ['wh-401-dev', DpsErrorCode.CustomAllocationUnauthorizedAccess, 'unauthorized (401)'],
    ['wh-no-hub-dev', DpsErrorCode.CustomAllocationIotHubNotSpecified, 'no iotHubHostName'],
    [
      'wh-unlinked-dev',
      DpsErrorCode.CustomAllocationFailed,
      `"${ROGUE_HUB}", which is not one of the linked hubs (${HUB_A}, ${HUB_B})`,
    ],
    ['wh-non-json-dev', DpsErrorCode.CustomAllocationFailed, 'response is not valid JSON'],
    ['wh-string-payload-dev', DpsErrorCode.CustomAllocationFailed, 'not a valid allocation response (payload:'],
    [
      'wh-bad-twin-dev',
      DpsErrorCode.CustomAllocationFailed,
      `not a valid allocation response (initialTwin.tags: property name "$bad" in tags contains '.', '$', a space or a control character).`,
    ],
    [
      'wh-big-int-dev',
      DpsErrorCode.CustomAllocationFailed,
      `not a valid allocation response (initialTwin.properties.desired.serial: 9007199254740993 is outside IoT Hub's integer range (-4503599627370496 to 4503599627370495)).`,
    ],
    ['wh-slow-dev', DpsErrorCode.CustomAllocationFailed, `did not answer within ${WEBHOOK_TIMEOUT_MS} ms (timeout)`],
    ['wh-503-always-dev', DpsErrorCode.CustomAllocationFailed, 'Custom allocation failed with status code: 503'],
  ];

  it.each(failures)('%s: the SDK sees a failed registration with %i', async (id, errorCode, message) => {
    const err = await rejectionOf(register(emulator, id, groupDeviceKey('custom', id)));
    expect(err.constructor.name).toBe('DeviceRegistrationFailedError');
    const body = err.result as { status: string; operationId: string; registrationState: Record<string, unknown> };
    expect(body.status).toBe('failed');
    expect(body.operationId).toMatch(/^4\.[0-9a-f]{16}\.[0-9a-f-]{36}$/);
    expect(body.registrationState).toMatchObject({ registrationId: id, status: 'failed', errorCode });
    expect(body.registrationState.errorMessage).toContain(message);
    expect(body.registrationState.assignedHub).toBeUndefined();
    expect(eventFor(id)?.outcome).toMatchObject({ status: 'failed', errorCode });
  });

  it('retries a webhook answering >= 429 on the (shortened) DPS schedule, then fails with its status', async () => {
    const id = 'wh-503-always-retried';
    const err = await rejectionOf(register(emulator, id, groupDeviceKey('custom', id)));
    expect(err.result).toMatchObject({
      registrationState: { errorMessage: 'Custom allocation failed with status code: 503' },
    });
    expect(webhook.callsFor(id)).toHaveLength(3);
    expect(eventFor(id)?.webhook).toMatchObject({ status: 503, attempts: 3 });
  });

  it('calls a webhook answering 400 once, and reports a timeout as such', async () => {
    await rejectionOf(register(emulator, 'wh-400-once', groupDeviceKey('custom', 'wh-400-once')));
    expect(webhook.callsFor('wh-400-once')).toHaveLength(1);
    await rejectionOf(register(emulator, 'wh-slow-reported', groupDeviceKey('custom', 'wh-slow-reported')));
    expect(eventFor('wh-slow-reported')?.webhook).toMatchObject({ failure: 'timeout', attempts: 1 });
    expect(eventFor('wh-slow-reported')?.webhook?.status).toBeUndefined();
  });

  it('keeps the device assigning through a 429 and assigns after the retry', async () => {
    const result = await register(emulator, 'wh-429-then-200-dev', groupDeviceKey('custom', 'wh-429-then-200-dev'));
    expect(result).toMatchObject({ status: 'assigned', assignedHub: HUB_A, payload: { call: 2 } });
    expect(webhook.callsFor('wh-429-then-200-dev')).toHaveLength(2);
    expect(eventFor('wh-429-then-200-dev')?.webhook).toMatchObject({ status: 200, attempts: 2 });
  });

  it("fails with DPS's message when the webhook cannot be reached, and logs the cause", async () => {
    const err = await rejectionOf(
      register(emulator, 'unreachable-dev', groupDeviceKey('unreachable', 'unreachable-dev')),
    );
    const state = (err.result as { registrationState: { errorCode: number; errorMessage: string } }).registrationState;
    expect(state.errorCode).toBe(DpsErrorCode.CustomAllocationFailed);
    // Real DPS: "Msg: An error occurred while sending the request." (MicrosoftDocs/azure-docs#69789).
    expect(state.errorMessage).toBe('An error occurred while sending the request.');
    expect(eventFor('unreachable-dev')?.webhook).toMatchObject({
      failure: 'connection-error',
      failureReason: expect.stringContaining('ECONNREFUSED'),
    });
  });
});

describe('MQTT: attestation failures', () => {
  const expectUnauthorized = async (promise: Promise<unknown>) => {
    const err = await rejectionOf(promise);
    expect(err.name).toBe('UnauthorizedError');
    expect(err.result).toMatchObject({ errorCode: 401000, message: 'Unauthorized' });
    expect((err.result as { trackingId: string }).trackingId).toMatch(/^[0-9a-f-]{36}$/);
  };

  it('answers a wrong key with 401 and keeps serving', async () => {
    await expectUnauthorized(register(emulator, 'hashed-wrong-key', generateSymmetricKey(32)));
    expect(eventFor('hashed-wrong-key')?.outcome).toMatchObject({ status: 'unauthorized', errorCode: 401000 });
    const ok = await register(emulator, 'hashed-after-failure', groupDeviceKey('hashed', 'hashed-after-failure'));
    expect(ok.status).toBe('assigned');
  });

  it('answers an expired token with 401', async () => {
    const token = createSasToken({
      resource: registrationResource(ID_SCOPE, 'hashed-expired'),
      key: groupDeviceKey('hashed', 'hashed-expired'),
      expiresAt: Math.floor(Date.now() / 1000) - 60,
    });
    await expectUnauthorized(
      register(emulator, 'hashed-expired', '', { securityClient: fixedTokenSecurityClient('hashed-expired', token) }),
    );
    expect(eventFor('hashed-expired')?.outcome.errorMessage).toMatch(/^expired:/);
  });

  it('answers a valid token for another registration id with 401', async () => {
    const token = createRegistrationSasToken({
      idScope: ID_SCOPE,
      registrationId: 'hashed-victim',
      key: groupDeviceKey('hashed', 'hashed-victim'),
    });
    await expectUnauthorized(
      register(emulator, 'hashed-attacker', '', { securityClient: fixedTokenSecurityClient('hashed-attacker', token) }),
    );
    expect(eventFor('hashed-attacker')?.outcome.errorMessage).toMatch(/^resource-mismatch:/);
  });

  it('answers a device no enrollment knows with 401, and an individual enrollment overrides a group key', async () => {
    await expectUnauthorized(register(emulator, 'nobody-knows-me', generateSymmetricKey()));
    expect(eventFor('nobody-knows-me')?.outcome.errorMessage).toMatch(/^no-matching-enrollment:/);
    // The hashed group's derived key would sign this id, but its individual enrollment decides.
    await expectUnauthorized(
      register(emulator, 'hashed-blocked-device', groupDeviceKey('hashed', 'hashed-blocked-device')),
    );
  });

  it('accepts a C/Python-style token whose resource is URL-encoded', async () => {
    const token = createRegistrationSasToken({
      idScope: ID_SCOPE,
      registrationId: 'hashed-encoded',
      key: groupDeviceKey('hashed', 'hashed-encoded'),
      encodeResource: true,
    });
    const result = await register(emulator, 'hashed-encoded', '', {
      securityClient: fixedTokenSecurityClient('hashed-encoded', token),
    });
    expect(result.status).toBe('assigned');
  });
});

describe('MQTT: disabled enrollments', () => {
  it('reports status disabled, which the Node SDK raises as SyntaxError', async () => {
    const err = await rejectionOf(register(emulator, 'disabled-dev', groupDeviceKey('disabled', 'disabled-dev')));
    expect(err.name).toBe('SyntaxError');
    expect(err.message).toBe('status is disabled');
    expect(err.result).toMatchObject({
      status: 'disabled',
      registrationState: { registrationId: 'disabled-dev', status: 'disabled' },
    });
  });

  it('blocks a device through its disabled individual enrollment', async () => {
    const err = await rejectionOf(register(emulator, 'hashed-blocked-device', KEYS.blocked.primaryKey));
    expect(err.result).toMatchObject({ status: 'disabled' });
    expect(eventFor('hashed-blocked-device')).toMatchObject({
      enrollment: { kind: 'individual' },
      outcome: { status: 'disabled' },
    });
  });
});

describe('MQTT: many devices at once', () => {
  // The emulator runs as its built CLI in its own process: with 250 SDK clients in the emulator's
  // process, a loaded machine (load 25+) starved that one event loop past the SDK's 30 s request
  // timeout. Apart, each device still gets its answer from the emulator, and no retry hides a lost
  // one: every SDK client registers once and must get its own final answer.
  // Nothing may time out on a loaded machine either (a run niced at load ~20 failed at 33.6 s): the
  // SDK's per-request timeout (its exported, mutable ProvisioningDeviceConstants
  // .defaultTimeoutInterval, 30 s) is two minutes here and the emulator's TLS handshakes get a minute
  // (the default 10 s), as in device-transports.fleet.test.ts. Both were needed: with the emulator
  // stopped (SIGSTOP) for 31 s, the old test failed 250 of 250 (TimeoutError), with the SDK's alone
  // 113 (ECONNRESET, the handshake timeouts firing first on SIGCONT), with both none.
  it('gives each of 250 concurrent registrations its own outcome, none lost or crossed', async () => {
    const child = await startCliEmulator(testConfig(webhook.url, await closedPortUrl()), [
      '--handshake-timeout',
      '60000',
    ]);
    const sdkTimeoutMs = ProvisioningDeviceConstants.defaultTimeoutInterval;
    ProvisioningDeviceConstants.defaultTimeoutInterval = 120_000;
    try {
      const ids = Array.from({ length: 250 }, (_, i) => `fleet-${String(i).padStart(3, '0')}`);
      const results = await Promise.all(
        ids.map((id, i) =>
          register(child.view, id, groupDeviceKey('custom', id), {
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
      // One registration event and one record per device, each with what its device was told.
      const fleetEvents = child.log().filter((line) => line.event === 'registration');
      expect(fleetEvents.map((line) => line.registrationId).sort()).toEqual(ids);
      const list = await child.cli(['registrations', 'list', '--json']);
      expect(list.code, list.stderr).toBe(0);
      const records = JSON.parse(list.stdout) as Array<{ registrationId: string; result: unknown }>;
      expect(records.map((record) => record.registrationId).sort()).toEqual(ids);
      for (const record of records) expect(record.result).toEqual(results[ids.indexOf(record.registrationId)]);
    } finally {
      ProvisioningDeviceConstants.defaultTimeoutInterval = sdkTimeoutMs;
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });
});
