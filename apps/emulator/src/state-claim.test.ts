// One emulator per state folder unless they serve it together (state-claim.ts). Two emulators on
// one folder used to share its store silently: the later start removed the enrollments the earlier
// one seeded, and the earlier one's devices were refused with nothing to say why.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmulatorConfigInput } from './config/schema.js';
import { createEmulator, type Emulator, type EmulatorOptions } from './emulator.js';
import { claimStateDir, StateDirInUseError } from './state-claim.js';
import { startArgs } from './testing/cli-io.js';
import { BUILT_CLI } from './testing/cli-process.js';
import { tempStateDir } from './testing/fixtures.js';
import { createDeviceKey, deviceClient, registryClient } from './testing/hub-sdk.js';

const config = (group: string): EmulatorConfigInput => ({
  iotHubs: [{ hostName: 'claim-hub.azure-devices.net' }],
  enrollmentGroups: [{ enrollmentGroupId: group, attestation: { type: 'symmetricKey', symmetricKey: {} } }],
});

/** Runs a command to its end. */
function run(command: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const started: Emulator[] = [];
const folders: { remove(): void }[] = [];
afterEach(async () => {
  for (const emulator of started.splice(0)) await emulator.stop();
  for (const folder of folders.splice(0)) folder.remove();
});

function emulatorOn(stateDir: string, group: string, options: Partial<EmulatorOptions> = {}): Emulator {
  const emulator = createEmulator({
    config: config(group),
    stateDir,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    webView: false,
    log: () => {},
    ...options,
  });
  started.push(emulator);
  return emulator;
}

/**
 * For an emulator the test expects refused: the folder's holder is running for the whole wait, so a
 * short one refuses exactly as the default 5 s would, without sitting it out.
 */
const REFUSED_WAIT = { stateClaimWaitMs: 200 } satisfies Partial<EmulatorOptions>;

function folder(): string {
  const state = tempStateDir();
  folders.push(state);
  return state.path;
}

/**
 * `dps-emulator start` (the built CLI) on `stateDir` in a process of its own, once its ready file
 * is written (removed after the test, with the folders). The test ends the process, by the signal
 * it is about.
 */
async function cliOn(stateDir: string): Promise<{ cli: ChildProcess; exited: Promise<unknown> }> {
  const readyFile = join(stateDir, '..', `${basename(stateDir)}.ready.json`);
  folders.push({ remove: () => rmSync(readyFile, { force: true }) });
  const cli = spawn(process.execPath, [BUILT_CLI, ...startArgs(stateDir, '--ready-file', readyFile)], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => cli.on('close', resolve));
  while (!existsSync(readyFile)) {
    if (cli.exitCode !== null) throw new Error('dps-emulator exited before it was ready');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { cli, exited };
}

describe('a state folder serves one emulator', () => {
  it('refuses a second emulator on the folder, naming it, and leaves the first one its enrollments', async () => {
    const stateDir = folder();
    const first = emulatorOn(stateDir, 'first-group');
    await first.start();
    const second = emulatorOn(stateDir, 'second-group', REFUSED_WAIT);
    const refusal = await second.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refusal).toBeInstanceOf(StateDirInUseError);
    expect((refusal as Error).message).toContain(`The state folder ${stateDir} is in use by another running emulator`);
    expect((refusal as Error).message).toContain('its own state folder');
    expect((refusal as Error).message).toContain('waited 0.2 s for it to stop');
    expect(first.enrollments.groups.map((g) => g.enrollmentGroupId)).toEqual(['first-group']);

    // Once the first one stops, the folder is free (and the next start seeds its own config).
    await first.stop();
    await second.start();
    expect(second.enrollments.groups.map((g) => g.enrollmentGroupId)).toEqual(['second-group']);
  });

  it('refuses an emulator on the folder of a dps-emulator process, told on its stderr; takes the folder once that process is killed', async () => {
    const stateDir = folder();
    const { cli, exited } = await cliOn(stateDir);
    try {
      await expect(emulatorOn(stateDir, 'library-group', REFUSED_WAIT).start()).rejects.toThrow(StateDirInUseError);
      // A second dps-emulator on the folder: exit 1, the reason on stderr (no stack).
      const second = await run(process.execPath, [BUILT_CLI, ...startArgs(stateDir)]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/^dps-emulator: The state folder .* is in use by another running emulator/);
      expect(second.stderr).not.toContain('    at ');
    } finally {
      // SIGKILL: no stop() runs, nothing is cleaned up; the operating system drops the lock.
      cli.kill('SIGKILL');
      await exited;
    }
    const after = emulatorOn(stateDir, 'library-group');
    await after.start();
    expect(after.enrollments.groups.map((g) => g.enrollmentGroupId)).toEqual(['library-group']);
  });

  it('waits for a dps-emulator that is stopping (Ctrl-C, then start again at once)', async () => {
    const stateDir = folder();
    const { cli, exited } = await cliOn(stateDir);
    cli.kill('SIGTERM');
    const next = emulatorOn(stateDir, 'next-group');
    await next.start();
    await exited;
    expect(next.enrollments.groups.map((g) => g.enrollmentGroupId)).toEqual(['next-group']);
  });

  it('lets emulators that share the folder (sharedStore, as --workers) serve it together, and no one else', async () => {
    const stateDir = folder();
    const a = emulatorOn(stateDir, 'shared-group', { sharedStore: true });
    const b = emulatorOn(stateDir, 'shared-group', { sharedStore: true });
    await a.start();
    await b.start();
    const sole = emulatorOn(stateDir, 'shared-group', REFUSED_WAIT);
    await expect(sole.start()).rejects.toThrow(StateDirInUseError);
  });

  it('tells a claim whether it was the first: a sole one always, a shared one while no other process serves the folder', () => {
    const stateDir = folder();
    const first = claimStateDir(stateDir, true);
    const second = claimStateDir(stateDir, true);
    expect([first.alone, second.alone]).toEqual([true, false]);
    first.release();
    second.release();
    const sole = claimStateDir(stateDir, false);
    expect(sole.alone).toBe(true);
    sole.release();
  });

  it("a shared emulator that joins a running one leaves its devices' connection states alone", async () => {
    const stateDir = folder();
    const a = emulatorOn(stateDir, 'shared-group', { sharedStore: true });
    await a.start();
    const hub = 'claim-hub.azure-devices.net';
    const registry = registryClient(a, hub);
    const id = 'connected-to-a';
    const client = await deviceClient(a, { hub, deviceId: id, key: await createDeviceKey(registry, id) });
    try {
      await client.open();
      // B has the store to share: A's connection is live, not a previous run's leftover.
      await emulatorOn(stateDir, 'shared-group', { sharedStore: true }).start();
      expect((await registry.get(id)).responseBody.connectionState).toBe('Connected');
    } finally {
      await client.close();
    }
  });

  it('does not let a shared emulator join a folder another emulator holds alone', async () => {
    const stateDir = folder();
    await emulatorOn(stateDir, 'sole-group').start();
    await expect(emulatorOn(stateDir, 'sole-group', { sharedStore: true, ...REFUSED_WAIT }).start()).rejects.toThrow(
      StateDirInUseError,
    );
  });

  it('takes waits (stateClaimWaitMs, storeBusyTimeoutMs) of 0 to 60,000 whole milliseconds and refuses any other, naming the option', () => {
    for (const name of ['stateClaimWaitMs', 'storeBusyTimeoutMs'] as const) {
      for (const ms of [0, 60_000]) expect(() => emulatorOn(folder(), 'g', { [name]: ms })).not.toThrow();
      for (const ms of [-1, 60_001, 1.5, Number.NaN]) {
        expect(() => emulatorOn(folder(), 'g', { [name]: ms })).toThrow(
          new RangeError(`${name} must be a whole number of milliseconds from 0 to 60000, not ${ms}`),
        );
      }
    }
  });
});
