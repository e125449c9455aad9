import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveDeviceKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TUTORIAL_GROUP_KEY } from '../config/defaults.js';
import { cli, startArgs, whileRunning } from '../testing/cli-io.js';
import { tempStateDir } from '../testing/fixtures.js';
import { register } from '../testing/sdk.js';
import { EXIT_OK, EXIT_USAGE } from './run.js';

// `dps-emulator registrations …` against a state folder the real emulator wrote, through the CLI's
// own entry point.

const dir = tempStateDir();
const state = join(dir.path, 'state');
afterAll(() => dir.remove());

const deviceKey = (id: string) => deriveDeviceKey(TUTORIAL_GROUP_KEY, id);
const START = startArgs(state);

beforeAll(async () => {
  const run = await whileRunning(START, async (emulator) => {
    for (const id of ['contoso-toaster-007', 'contoso-heatpump-088']) {
      expect((await register(emulator, id, deviceKey(id))).status).toBe('assigned');
    }
  });
  expect(run.code, run.err).toBe(EXIT_OK);
});

describe('dps-emulator registrations', () => {
  it('lists the records as a table and as JSON', async () => {
    const table = await cli('registrations', 'list', '--state-dir', state);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^REGISTRATION ID +STATUS +HUB \/ ERROR +ENROLLMENT +LAST UPDATED\n/);
    expect(table.out).toMatch(
      /\ncontoso-heatpump-088 +assigned +contoso-\S+ +group contoso-custom-allocated-devices +\d{4}-/,
    );
    expect(table.out).toContain(`2 registration records in ${state}\n`);
    const json = await cli('registrations', 'list', '--state-dir', state, '--json');
    const records = JSON.parse(json.out) as { registrationId: string; result: { status: string } }[];
    expect(records.map((r) => [r.registrationId, r.result.status])).toEqual([
      ['contoso-heatpump-088', 'assigned'],
      ['contoso-toaster-007', 'assigned'],
    ]);
  });

  it('shows one record (any case of its id) and says when there is none', async () => {
    const shown = await cli('registrations', 'show', 'CONTOSO-TOASTER-007', '--state-dir', state, '--json');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.out)).toMatchObject({
      registrationId: 'contoso-toaster-007',
      enrollment: { kind: 'group', id: 'contoso-custom-allocated-devices' },
      result: { status: 'assigned', deviceId: 'contoso-toaster-007' },
    });
    expect((await cli('registrations', 'show', 'contoso-toaster-007', '--state-dir', state)).out).toContain(
      'status          assigned\n',
    );
    const missing = await cli('registrations', 'show', 'nobody', '--state-dir', state);
    expect([missing.code, missing.err]).toEqual([1, `dps-emulator: no registration record "nobody" in ${state}.\n`]);
  });

  it('deletes a record while the emulator runs; the device then registers afresh', async () => {
    const run = await whileRunning(START, async (emulator) => {
      const deleted = await cli('registrations', 'delete', 'contoso-toaster-007', '--state-dir', state, '--json');
      expect([deleted.code, JSON.parse(deleted.out)]).toEqual([
        0,
        { deleted: true, registrationId: 'contoso-toaster-007' },
      ]);
      expect(emulator.registrations().map((r) => r.registrationId)).toEqual(['contoso-heatpump-088']);
      const again = await register(emulator, 'contoso-toaster-007', deviceKey('contoso-toaster-007'));
      expect(again).toMatchObject({ status: 'assigned', substatus: 'initialAssignment' });
    });
    expect(run.code, run.err).toBe(EXIT_OK);
    const gone = await cli('registrations', 'delete', 'nobody', '--state-dir', state);
    expect(gone.code).toBe(1);
  });

  it('refuses a folder without emulator state, and creates nothing there', async () => {
    const empty = join(dir.path, 'nothing-here');
    const result = await cli('registrations', 'list', '--state-dir', empty);
    expect(result.code).toBe(1);
    expect(result.err).toContain(`no emulator state in ${empty} (no emulator.db)`);
    expect(existsSync(empty)).toBe(false);
  });

  it('answers bad usage with the suggestion and exit 2, and prints its help', async () => {
    const typo = await cli('registrations', 'lsit');
    expect([typo.code, typo.err]).toEqual([
      EXIT_USAGE,
      'dps-emulator: unknown action "lsit"\nDid you mean list?\nRun "dps-emulator registrations --help" for the options.\n',
    ]);
    const noId = await cli('registrations', 'show');
    expect([noId.code, noId.err]).toEqual([
      EXIT_USAGE,
      'dps-emulator: show needs a registration ID\nRun "dps-emulator registrations --help" for the options.\n',
    ]);
    const help = await cli('registrations', '--help');
    expect([help.code, help.out]).toEqual([
      0,
      expect.stringContaining('dps-emulator registrations delete <registrationId>'),
    ]);
  });
});
