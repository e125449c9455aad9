import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  findWorkspaceRoot,
  installProject,
  packPackages,
  run,
  userEnv,
  withWorkspaceDependencies,
} from '@dpskit/packaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firmwareAllocationBody, serveAppFolder } from './harness/app-host.js';
import { extractZip } from './harness/unzip.js';

const EXAMPLE = path.join(findWorkspaceRoot(), 'examples', 'custom-policy');

/**
 * examples/custom-policy as a user has it: dpskit installed with plain npm from the packed
 * tarballs (as from the registry), in a folder outside the workspace. A missing `exports` entry, a
 * file left out of a package or an undeclared dependency fails here.
 */
describe('examples/custom-policy installed from the packed tarballs', () => {
  let work: string;
  let project: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'dpskit-consumer-'));
    const packed = await packPackages(
      withWorkspaceDependencies(['@dpskit/allocator', '@dpskit/emulator', '@dpskit/device-sim']),
      path.join(work, 'packs'),
    );
    project = path.join(work, 'custom-policy');
    // npm install, with the emulator's SQLite binding the workspace built (not compiled again)
    await installProject({ source: EXAMPLE, dir: project, packages: packed });
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("runs the example's own tests green with npm test (policy unit tests, emulator end to end)", async () => {
    const result = await run('npm', ['test'], { cwd: project, env: userEnv() });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    expect(output).toMatch(/^# fail 0$/m);
    const passed = Number(/^# pass (\d+)$/m.exec(output)?.[1]);
    expect(passed).toBeGreaterThanOrEqual(9);
    expect(output).toContain('assigns firmware 2.x to the current hub, with its initial twin (MQTT)');
  }, 300_000);

  it('packages the app with npm run package; the zip unpacked in an empty folder answers as the policy decides', async () => {
    const packaged = await run('npm', ['run', 'package'], { cwd: project, env: userEnv() });
    expect(packaged.code, `${packaged.stdout}\n${packaged.stderr}`).toBe(0);
    expect(packaged.stdout).toContain('allocate: [POST] /api/allocate (function)');

    const unpacked = path.join(work, 'wwwroot');
    await mkdir(unpacked);
    expect(await extractZip(path.join(project, 'deploy', 'app.zip'), unpacked)).toBeGreaterThan(0);
    expect((await readdir(unpacked)).sort()).toEqual([
      'dist',
      'host.json',
      'node_modules',
      'package-lock.json',
      'package.json',
    ]);
    // Production dependencies only: the emulator, the device simulator and their SQLite binding stay out.
    const modules = await readdir(path.join(unpacked, 'node_modules'));
    for (const dev of ['typescript', 'better-sqlite3', '@types']) expect(modules).not.toContain(dev);
    expect(await readdir(path.join(unpacked, 'node_modules', '@dpskit'))).toEqual(
      expect.not.arrayContaining(['emulator', 'device-sim']),
    );
    expect(existsSync(path.join(unpacked, 'dist', 'test'))).toBe(false);

    // Served from the unpacked folder by the installed dpskit-allocator (plain Node, no Functions host).
    const bin = path.join(project, 'node_modules', '@dpskit', 'allocator', 'dist', 'cli.js');
    const app = await serveAppFolder(bin, unpacked, 'consumer-key');
    try {
      expect(app.url).toMatch(/\/api\/allocate\?code=consumer-key$/);
      const current = await fetch(app.url, { method: 'POST', body: firmwareAllocationBody('2.1.0') });
      expect(current.status).toBe(200);
      expect(await current.json()).toMatchObject({
        iotHubHostName: 'contoso-fw-current.azure-devices.net',
        initialTwin: { tags: { firmwareLine: 'current' } },
      });
      const old = await fetch(app.url, { method: 'POST', body: firmwareAllocationBody('0.5.0') });
      expect([old.status, await old.text()]).toEqual([
        400,
        'Firmware 0.5.0 is not supported: update the device to 1.0.0 or later.',
      ]);
    } finally {
      await app.stop();
    }
  }, 300_000);
});
