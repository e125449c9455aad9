import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { PortError } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatorConfigInput } from './config/schema.js';
import { createEmulator, type Emulator } from './emulator.js';
import {
  HUB_A,
  HUB_B,
  ID_SCOPE,
  startTestEmulator,
  tempStateDir,
  testEmulatorOptions,
  WEBHOOK_TWIN,
} from './testing/fixtures.js';
import { register, rejectionOf } from './testing/sdk.js';
import { startWebhook, type TestWebhook } from './testing/webhook-server.js';

const execFileAsync = promisify(execFile);

const GROUP_KEYS = new Map<string, string>();
const groupKey = (groupId: string) => {
  if (!GROUP_KEYS.has(groupId)) GROUP_KEYS.set(groupId, generateSymmetricKey());
  return GROUP_KEYS.get(groupId) as string;
};
/** Device ids are `<group prefix>-dev`: `migrate-dev` belongs to `migrate-group`. */
const keyFor = (id: string) => deriveDeviceKey(groupKey(`${id.split('-')[0]}-group`), id);
const group = (enrollmentGroupId: string, rest: Record<string, unknown>) => ({
  enrollmentGroupId,
  attestation: { type: 'symmetricKey' as const, symmetricKey: { primaryKey: groupKey(enrollmentGroupId) } },
  ...rest,
});

// The webhook sends each device to the hub its payload asks for, with a twin and an echo payload.
let webhook: TestWebhook;
beforeAll(async () => {
  webhook = await startWebhook((request) => ({
    body: {
      iotHubHostName: request.deviceRuntimeContext.payload?.hub === 'b' ? HUB_B : HUB_A,
      initialTwin: WEBHOOK_TWIN,
      payload: { current: request.deviceRuntimeContext.currentIotHubHostName ?? null },
    },
  }));
});
afterAll(() => webhook?.close());

function config(hashedHubs: string[]): EmulatorConfigInput {
  const custom = {
    allocationPolicy: 'custom',
    customAllocationDefinition: { webhookUrl: webhook.url, apiVersion: '2021-10-01' },
  };
  return {
    idScope: ID_SCOPE,
    iotHubs: [{ hostName: HUB_A }, { hostName: HUB_B }],
    enrollmentGroups: [
      group('migrate-group', { ...custom }),
      group('reset-group', { ...custom, reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false } }),
      group('never-group', { ...custom, reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: true } }),
      group('moving-group', { allocationPolicy: 'hashed', iotHubs: hashedHubs }),
      group('sticky-group', {
        allocationPolicy: 'hashed',
        iotHubs: hashedHubs,
        reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: true },
      }),
      // No attestation: the emulator generates the keys and must keep them across restarts.
      { enrollmentGroupId: 'generated-keys-group', allocationPolicy: 'hashed' },
    ],
  };
}

describe('state across restarts', () => {
  const state = tempStateDir();
  afterAll(() => state.remove());

  it('keeps registration records and generated keys, and re-registration follows the reprovision policy', async () => {
    const first = await startTestEmulator(testEmulatorOptions(config([HUB_A]), state.path, { httpsPort: null }));
    let emulator: Emulator = first.emulator;
    let generated: { primaryKey?: string; secondaryKey?: string } | undefined;
    try {
      expect(emulator.generatedKeys).toContainEqual({
        kind: 'group',
        id: 'generated-keys-group',
        keys: ['primaryKey', 'secondaryKey'],
      });
      // The other groups give only a primary key: their secondary is generated.
      expect(emulator.generatedKeys).toContainEqual({ kind: 'group', id: 'migrate-group', keys: ['secondaryKey'] });
      generated = emulator.enrollments.groups.find((g) => g.enrollmentGroupId === 'generated-keys-group')?.attestation
        .symmetricKey;
      expect(generated?.primaryKey).toMatch(/^[A-Za-z0-9+/]{86}==$/);

      const initial = await register(emulator, 'migrate-dev', keyFor('migrate-dev'), { payload: { hub: 'a' } });
      expect(initial).toMatchObject({ assignedHub: HUB_A, substatus: 'initialAssignment', payload: { current: null } });
      expect(first.events.at(-1)?.outcome.initialTwin).toEqual(WEBHOOK_TWIN);
      const moving = await register(emulator, 'moving-dev', keyFor('moving-dev'));
      expect(moving.assignedHub).toBe(HUB_A);
    } finally {
      await emulator.stop();
    }

    // Same state folder, and the hashed groups now list only hub B.
    const second = await startTestEmulator(testEmulatorOptions(config([HUB_B]), state.path, { httpsPort: null }));
    emulator = second.emulator;
    try {
      const records = emulator.registrations();
      const before = records.find((r) => r.registrationId === 'migrate-dev');
      expect(before).toMatchObject({ status: 'assigned', assignedHub: HUB_A, deviceId: 'migrate-dev' });
      expect(records.map((r) => r.registrationId).sort()).toEqual(['migrate-dev', 'moving-dev']);
      expect(
        emulator.enrollments.groups.find((g) => g.enrollmentGroupId === 'generated-keys-group')?.attestation
          .symmetricKey,
      ).toEqual(generated);
      expect(emulator.generatedKeys).toContainEqual({
        kind: 'group',
        id: 'generated-keys-group',
        keys: ['primaryKey', 'secondaryKey'],
      });

      const again = await register(emulator, 'migrate-dev', keyFor('migrate-dev'), { payload: { hub: 'b' } });
      expect(again).toMatchObject({
        assignedHub: HUB_B,
        substatus: 'deviceDataMigrated',
        createdDateTimeUtc: before?.createdDateTimeUtc,
        payload: { current: HUB_A },
      });
      expect(again.etag).not.toBe(before?.etag);
      const call = webhook.callsFor('migrate-dev').at(-1);
      expect(call?.body.deviceRuntimeContext).toMatchObject({
        currentIotHubHostName: HUB_A,
        currentDeviceId: 'migrate-dev',
      });
      expect(call?.body.linkedHubs).toEqual([HUB_A, HUB_B]);
      // Migrating keeps the device's twin: DPS writes no initial twin.
      expect(second.events.at(-1)?.outcome.initialTwin).toBeUndefined();

      const moved = await register(emulator, 'moving-dev', keyFor('moving-dev'));
      expect(moved).toMatchObject({ assignedHub: HUB_B, substatus: 'deviceDataMigrated' });
    } finally {
      await emulator.stop();
    }
  });
});

describe('reprovision policies', () => {
  const state = tempStateDir();
  let emulator: Emulator;
  let events: Awaited<ReturnType<typeof startTestEmulator>>['events'];
  beforeAll(async () => {
    ({ emulator, events } = await startTestEmulator(
      testEmulatorOptions(config([HUB_A]), state.path, { httpsPort: null }),
    ));
  });
  afterAll(async () => {
    await emulator?.stop();
    state.remove();
  });

  it('"reprovision and reset" reports deviceDataReset and writes the initial twin again', async () => {
    await register(emulator, 'reset-dev', keyFor('reset-dev'), { payload: { hub: 'a' } });
    const again = await register(emulator, 'reset-dev', keyFor('reset-dev'), { payload: { hub: 'a' } });
    expect(again).toMatchObject({ assignedHub: HUB_A, substatus: 'deviceDataReset' });
    expect(events.at(-1)?.outcome.initialTwin).toEqual(WEBHOOK_TWIN);
  });

  it('"never reprovision" still calls the webhook, with only the current hub linked', async () => {
    await register(emulator, 'never-dev', keyFor('never-dev'), { payload: { hub: 'a' } });
    const stays = await register(emulator, 'never-dev', keyFor('never-dev'), { payload: { hub: 'a' } });
    expect(stays).toMatchObject({ assignedHub: HUB_A, substatus: 'initialAssignment', payload: { current: HUB_A } });
    expect(webhook.callsFor('never-dev').at(-1)?.body.linkedHubs).toEqual([HUB_A]);

    const err = await rejectionOf(register(emulator, 'never-dev', keyFor('never-dev'), { payload: { hub: 'b' } }));
    expect((err.result as { registrationState: { errorMessage: string } }).registrationState.errorMessage).toContain(
      `"${HUB_B}", which is not one of the linked hubs (${HUB_A})`,
    );
    // A failed re-registration does not forget where the device is.
    const back = await register(emulator, 'never-dev', keyFor('never-dev'), { payload: { hub: 'a' } });
    expect(back).toMatchObject({ assignedHub: HUB_A, payload: { current: HUB_A } });
  });

  it('"never reprovision" keeps a hashed device on its hub', async () => {
    const first = await register(emulator, 'sticky-dev', keyFor('sticky-dev'));
    const second = await register(emulator, 'sticky-dev', keyFor('sticky-dev'));
    expect(second).toMatchObject({ assignedHub: first.assignedHub, substatus: 'initialAssignment' });
  });
});

describe('lifecycle', () => {
  it.each([
    ['httpsPort', 'HTTPS', '--https-port (httpsPort)'],
    ['amqpPort', 'AMQP', '--amqp-port (amqpPort)'],
  ] as const)(
    'reports a port in use (%s) with the fix, and releases what it had started',
    async (option, label, flag) => {
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const port = (blocker.address() as net.AddressInfo).port;
      const state = tempStateDir();
      try {
        const emulator = createEmulator({ ...testEmulatorOptions(config([HUB_A]), state.path), [option]: port });
        const err = await rejectionOf(emulator.start());
        expect(err).toBeInstanceOf(PortError);
        expect(err.message).toBe(
          `Cannot listen for ${label} on 127.0.0.1:${port}: the port is already in use. Stop the process using it, or choose another port with ${flag} (0 picks a free one).`,
        );
        expect(() => emulator.idScope).toThrow(/not running/);
        // Everything was released: the same state folder starts fine.
        const retry = createEmulator(testEmulatorOptions(config([HUB_A]), state.path));
        await retry.start();
        await retry.stop();
        await retry.stop();
      } finally {
        blocker.close();
        state.remove();
      }
    },
  );

  it('serves an unmodified device script that trusts the CA through NODE_EXTRA_CA_CERTS', async () => {
    const state = tempStateDir();
    const emulator = createEmulator({ ...testEmulatorOptions(config([HUB_A]), state.path), httpsPort: null });
    await emulator.start();
    try {
      // The stock sample: no injected transport base, no CA option.
      const script = `
        const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
        const { Mqtt } = require('azure-iot-provisioning-device-mqtt');
        const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
        const client = ProvisioningDeviceClient.create(${JSON.stringify(emulator.endpoints.mqtt.provisioningHost)}, '${ID_SCOPE}',
          new Mqtt(), new SymmetricKeySecurityClient('moving-stock', ${JSON.stringify(keyFor('moving-stock'))}));
        client.register().then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.name, e.message); process.exit(1); });`;
      const { stdout } = await execFileAsync(process.execPath, ['-e', script], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caCertPath },
      });
      expect(JSON.parse(stdout)).toMatchObject({
        registrationId: 'moving-stock',
        assignedHub: HUB_A,
        status: 'assigned',
      });
    } finally {
      await emulator.stop();
      state.remove();
    }
  });

  it('serves an unmodified AMQP device script that trusts the CA through NODE_EXTRA_CA_CERTS', async () => {
    const state = tempStateDir();
    const emulator = createEmulator({ ...testEmulatorOptions(config([HUB_A]), state.path), httpsPort: null });
    await emulator.start();
    try {
      // The stock sample with the AMQP transport: host:port, no injected base, no CA option.
      const script = `
        const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
        const { Amqp } = require('azure-iot-provisioning-device-amqp');
        const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
        const client = ProvisioningDeviceClient.create(${JSON.stringify(emulator.endpoints.amqp?.provisioningHost)}, '${ID_SCOPE}',
          new Amqp(), new SymmetricKeySecurityClient('moving-amqp-stock', ${JSON.stringify(keyFor('moving-amqp-stock'))}));
        client.register().then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.name, e.message); process.exit(1); });`;
      const { stdout } = await execFileAsync(process.execPath, ['-e', script], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caCertPath },
      });
      expect(JSON.parse(stdout)).toMatchObject({
        registrationId: 'moving-amqp-stock',
        assignedHub: HUB_A,
        status: 'assigned',
      });
    } finally {
      await emulator.stop();
      state.remove();
    }
  });

  it('reads a YAML config file and refuses a config given twice', async () => {
    const state = tempStateDir();
    try {
      const file = join(state.path, 'dps.yaml');
      writeFileSync(
        file,
        `idScope: 0ne0000FILE\niotHubs:\n  - hostName: ${HUB_A}\nindividualEnrollments:\n  - registrationId: yaml-device\n    allocationPolicy: static\n    iotHubs: [${HUB_A}]\n`,
      );
      const emulator = createEmulator({
        ...testEmulatorOptions({ iotHubs: [] }, state.path),
        config: undefined,
        configFile: file,
        httpsPort: null,
      });
      await emulator.start();
      try {
        expect(emulator.idScope).toBe('0ne0000FILE');
        const key = emulator.enrollments.individuals[0]?.attestation.symmetricKey?.primaryKey ?? '';
        const result = await register(emulator, 'yaml-device', key);
        expect(result).toMatchObject({ status: 'assigned', assignedHub: HUB_A });
      } finally {
        await emulator.stop();
      }
      expect(() => createEmulator({ config: { iotHubs: [] }, configFile: file })).toThrow(
        /either config or configFile/,
      );
    } finally {
      state.remove();
    }
  });
});
