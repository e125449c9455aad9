import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveDeviceKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { cli, startArgs, whileRunning as whileRunningCli } from '../testing/cli-io.js';
import { KEYS, tempStateDir } from '../testing/fixtures.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { serviceClient } from '../testing/service-sdk.js';
import { EXIT_OK, EXIT_USAGE } from './run.js';

// `dps-emulator enrollments …` against a state folder the real emulator wrote (the config file's
// enrollments seeded on start, one created through the service API with the official service SDK),
// through the CLI's own entry point.

const dir = tempStateDir();
const state = join(dir.path, 'state');
const configFile = join(dir.path, 'emulator.json');
const HUB = 'hub-a.azure-devices.net';
const WEBHOOK = 'http://127.0.0.1:9/api/allocate?code=secret-function-key';
afterAll(() => dir.remove());

const symmetricKey = (keys: { primaryKey: string; secondaryKey: string }) => ({
  type: 'symmetricKey' as const,
  symmetricKey: keys,
});

writeFileSync(
  configFile,
  JSON.stringify({
    idScope: '0ne00000A0A',
    iotHubs: [{ hostName: HUB }],
    enrollmentGroups: [
      {
        enrollmentGroupId: 'sensors',
        attestation: symmetricKey(KEYS.static),
        allocationPolicy: 'static',
        iotHubs: [HUB],
      },
      {
        enrollmentGroupId: 'custom-group',
        attestation: symmetricKey(KEYS.custom),
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl: WEBHOOK, apiVersion: '2021-10-01' },
      },
      // shares its id with the individual enrollment below
      { enrollmentGroupId: 'twin-name', attestation: symmetricKey(KEYS.hashed) },
    ],
    individualEnrollments: [
      { registrationId: 'twin-name', attestation: symmetricKey(KEYS.individual), iotHubs: [HUB] },
      { registrationId: 'single-device', attestation: symmetricKey(KEYS.blocked), iotHubs: [HUB] },
    ],
  }),
);

const START = startArgs(state, '--config', configFile);

/** Starts the emulator on the state folder, runs `during`, stops it. */
async function whileRunning(during: (emulator: Emulator) => Promise<void>): Promise<void> {
  const run = await whileRunningCli(START, during);
  expect(run.code, run.err).toBe(EXIT_OK);
}

beforeAll(async () => {
  await whileRunning(async (emulator) => {
    await serviceClient(emulator).createOrUpdateIndividualEnrollment({
      registrationId: 'api-device',
      attestation: symmetricKey(KEYS.disabled),
    } as never);
    expect(
      (await register(emulator, 'single-device', KEYS.blocked.primaryKey)).status,
      'the individual enrollment admits its device',
    ).toBe('assigned');
  });
});

describe('dps-emulator enrollments', () => {
  it('lists both kinds as a table: where each came from, webhook query masked', async () => {
    const table = await cli('enrollments', 'list', '--state-dir', state);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^KIND +ID +ATTESTATION +ALLOCATION +STATUS +HUBS +WEBHOOK +FROM\n/);
    expect(table.out).toMatch(
      /\ngroup +sensors +symmetricKey +static +enabled +hub-a\.azure-devices\.net +config file\n/,
    );
    expect(table.out).toMatch(
      /\ngroup +custom-group +symmetricKey +custom .*http:\/\/127\.0\.0\.1:9\/api\/allocate\?\*\*\*\* /,
    );
    expect(table.out).toMatch(/\nindividual +api-device +symmetricKey .* service API\n/);
    expect(table.out).toContain(`6 enrollments in ${state}\n`);
    expect(table.out).not.toContain('secret-function-key');
    for (const keys of Object.values(KEYS)) expect(table.out).not.toContain(keys.primaryKey);
  });

  it('lists JSON records as the service API answers them, keys and the webhook key only with --show-keys', async () => {
    const plain = await cli('enrollments', 'list', '--state-dir', state, '--json', '--kind', 'group');
    const groups = JSON.parse(plain.out) as Record<string, unknown>[];
    expect(groups.map((g) => g.enrollmentGroupId)).toEqual(['custom-group', 'sensors', 'twin-name']);
    expect(groups[0]).toMatchObject({
      attestation: { type: 'symmetricKey' },
      customAllocationDefinition: { webhookUrl: 'http://127.0.0.1:9/api/allocate?****', apiVersion: '2021-10-01' },
      provisioningStatus: 'enabled',
      etag: expect.any(String),
    });
    expect(plain.out).not.toContain('symmetricKey":');
    expect(plain.out).not.toContain(KEYS.custom.primaryKey);

    const keyed = await cli('enrollments', 'list', '--state-dir', state, '--json', '--show-keys');
    const all = JSON.parse(keyed.out) as Record<string, unknown>[];
    expect(all.map((e) => e.enrollmentGroupId ?? `individual ${e.registrationId}`)).toEqual([
      'custom-group',
      'sensors',
      'twin-name',
      'individual api-device',
      'individual single-device',
      'individual twin-name',
    ]);
    expect(all[0]).toMatchObject({
      attestation: { type: 'symmetricKey', symmetricKey: KEYS.custom },
      customAllocationDefinition: { webhookUrl: WEBHOOK },
    });
  });

  it('shows one enrollment (any case of its id), an individual one with its registration state', async () => {
    const group = await cli('enrollments', 'show', 'SENSORS', '--state-dir', state, '--json');
    expect(group.code).toBe(0);
    expect(JSON.parse(group.out)).toMatchObject({
      enrollmentGroupId: 'sensors',
      attestation: { type: 'symmetricKey' },
      allocationPolicy: 'static',
      iotHubs: [HUB],
    });
    expect(group.out).not.toContain(KEYS.static.primaryKey);
    const keyed = await cli('enrollments', 'show', 'sensors', '--state-dir', state, '--json', '--show-keys');
    expect(JSON.parse(keyed.out).attestation).toEqual(symmetricKey(KEYS.static));

    const single = await cli('enrollments', 'show', 'single-device', '--state-dir', state, '--json');
    const record = JSON.parse(single.out) as Record<string, unknown>;
    expect(Object.keys(record).slice(0, 2)).toEqual(['registrationId', 'registrationState']);
    expect(record.registrationState).toMatchObject({
      registrationId: 'single-device',
      status: 'assigned',
      assignedHub: HUB,
    });

    const text = await cli('enrollments', 'show', 'custom-group', '--state-dir', state);
    expect(text.out).toContain('kind               enrollment group\n');
    expect(text.out).toContain('webhookUrl         http://127.0.0.1:9/api/allocate?****\n');
    expect(text.out).toContain('from               the config file\n');
    expect(text.out).not.toContain('secret-function-key');
  });

  it('asks for --kind when a group and an individual enrollment share the id, and says when there is none', async () => {
    const both = await cli('enrollments', 'show', 'twin-name', '--state-dir', state);
    expect([both.code, both.err]).toEqual([
      1,
      `dps-emulator: "twin-name" is both an enrollment group and an individual enrollment in ${state}: pass --kind group or --kind individual.\n`,
    ]);
    const individual = await cli(
      'enrollments',
      'show',
      'twin-name',
      '--kind',
      'individual',
      '--state-dir',
      state,
      '--json',
    );
    expect(JSON.parse(individual.out)).toMatchObject({ registrationId: 'twin-name' });
    const missing = await cli('enrollments', 'show', 'nobody', '--state-dir', state);
    expect([missing.code, missing.err]).toEqual([
      1,
      `dps-emulator: no enrollment group or individual enrollment "nobody" in ${state}.\n`,
    ]);
    const wrongKind = await cli('enrollments', 'delete', 'sensors', '--kind', 'individual', '--state-dir', state);
    expect([wrongKind.code, wrongKind.err]).toEqual([
      1,
      `dps-emulator: no individual enrollment "sensors" in ${state}.\n`,
    ]);
  });

  it('deletes while the emulator runs: the device is refused at once; a config file enrollment comes back on restart', async () => {
    await whileRunning(async (emulator) => {
      const deviceKey = deriveDeviceKey(KEYS.static.primaryKey, 'sensor-1');
      expect((await register(emulator, 'sensor-1', deviceKey)).status).toBe('assigned');
      const deleted = await cli('enrollments', 'delete', 'sensors', '--state-dir', state, '--json');
      expect([deleted.code, JSON.parse(deleted.out)]).toEqual([
        0,
        { deleted: true, kind: 'group', id: 'sensors', seededFromConfig: true },
      ]);
      // DPS answers a device no enrollment admits with 401 (the SDK's UnauthorizedError).
      const refused = await rejectionOf(register(emulator, 'sensor-1', deviceKey, { transport: 'https' }));
      expect(refused.name).toBe('UnauthorizedError');

      const apiDeleted = await cli('enrollments', 'delete', 'api-device', '--state-dir', state);
      expect(apiDeleted.out).toBe('Deleted the individual enrollment "api-device".\n');
    });
    const listed = JSON.parse((await cli('enrollments', 'list', '--state-dir', state, '--json')).out) as {
      enrollmentGroupId?: string;
      registrationId?: string;
    }[];
    expect(listed.some((e) => e.enrollmentGroupId === 'sensors')).toBe(false);

    await whileRunning(async () => {});
    const after = JSON.parse((await cli('enrollments', 'list', '--state-dir', state, '--json')).out) as {
      enrollmentGroupId?: string;
      registrationId?: string;
    }[];
    expect(after.some((e) => e.enrollmentGroupId === 'sensors')).toBe(true);
    expect(after.some((e) => e.registrationId === 'api-device')).toBe(false);
    expect((await cli('enrollments', 'show', 'sensors', '--state-dir', state)).code).toBe(0);
  });

  it('says a seeded enrollment comes back when deleting it as text', async () => {
    const deleted = await cli('enrollments', 'delete', 'custom-group', '--state-dir', state);
    expect(deleted.out).toBe(
      'Deleted the enrollment group "custom-group". It came from the config file: the emulator creates it again on its next start while the file declares it.\n',
    );
  });

  it('refuses a folder without emulator state, bad usage with a suggestion and exit 2, and prints its help', async () => {
    const none = await cli('enrollments', 'list', '--state-dir', join(dir.path, 'nothing-here'));
    expect(none.code).toBe(1);
    expect(none.err).toContain('(no emulator.db)');
    const typo = await cli('enrollments', 'shwo', 'x');
    expect([typo.code, typo.err]).toEqual([
      EXIT_USAGE,
      'dps-emulator: unknown action "shwo"\nDid you mean show?\nRun "dps-emulator enrollments --help" for the options.\n',
    ]);
    const kind = await cli('enrollments', 'list', '--kind', 'groups');
    expect([kind.code, kind.err]).toEqual([
      EXIT_USAGE,
      'dps-emulator: --kind must be group or individual, not "groups"\nDid you mean --kind group?\nRun "dps-emulator enrollments --help" for the options.\n',
    ]);
    const flag = await cli('enrollments', 'list', '--show-key');
    expect(flag.code).toBe(EXIT_USAGE);
    expect(flag.err).toContain('Did you mean --show-keys?');
    const noId = await cli('enrollments', 'delete');
    expect(noId.err).toContain('delete needs an enrollment ID');
    const help = await cli('enrollments', '--help');
    expect([help.code, help.out]).toEqual([0, expect.stringContaining('dps-emulator enrollments show <id>')]);
    expect((await cli('--help')).out).toContain('dps-emulator enrollments list|show <id>|delete <id>');
  });
});
