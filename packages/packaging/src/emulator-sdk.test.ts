import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConsumerTsconfig } from './consumer-tsconfig.js';
import { installTarballs, userEnv } from './install.js';
import { type PackedPackage, packPackages } from './pack.js';
import { run } from './run.js';
import { findWorkspaceRoot, type PackageManifest, withWorkspaceDependencies } from './workspace.js';

// @dpskit/emulator/sdk as a user outside the workspace gets it: the emulator's tarball (and the
// packages it needs) installed with plain npm, first alone (the SDKs are optional peers: nothing
// fails until a helper needs one), then beside the official SDKs from the npm registry at the
// versions the emulator is tested with; a TypeScript test file (strict) using each helper,
// type-checked and run against an emulator it starts (fixtures/emulator-sdk/consumer.ts); and a
// CommonJS project whose tests run under a plain `jest` (fixtures/jest-commonjs).
// The tests run in order: the first sees no SDK, the second installs them, the third uses them.

const root = findWorkspaceRoot();
const emulatorManifest = JSON.parse(
  readFileSync(join(root, 'apps', 'emulator', 'package.json'), 'utf8'),
) as PackageManifest & { peerDependencies: Record<string, string> };
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageManifest;
const devVersion = (name: string) => emulatorManifest.devDependencies?.[name] ?? '';
/** The peers, at the exact versions the emulator's own tests run (its devDependencies). */
const SDKS = Object.fromEntries(Object.keys(emulatorManifest.peerDependencies).map((name) => [name, devVersion(name)]));
const TYPES_NODE = (rootManifest.devDependencies as Record<string, string>)['@types/node'] as string;
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

let work: string;
let consumer: string;
let tarballs: PackedPackage[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'dpskit-emulator-sdk-'));
  tarballs = await packPackages(
    withWorkspaceDependencies(['@dpskit/emulator', '@dpskit/allocator', '@dpskit/device-sim']),
    join(work, 'tarballs'),
    root,
  );
  consumer = join(work, 'consumer');
  // device-sim (for the jest project) depends on the SDKs: it joins with them, in the second test.
  const withoutSdks = tarballs.filter((p) => p.name !== '@dpskit/device-sim');
  await installTarballs({ dir: consumer, packages: withoutSdks, dependencies: { '@types/node': TYPES_NODE } }, root);
}, 15 * 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
}, 10 * 60_000);

/** Compiles `file` in the consumer (writeConsumerTsconfig) and runs it; returns what it printed. */
async function compileAndRun(file: string, skipLibCheck: boolean): Promise<unknown> {
  writeConsumerTsconfig(consumer, file, { skipLibCheck, outDir: 'dist' });
  const compiled = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const result = await run(process.execPath, [join('dist', file.replace(/\.ts$/, '.js'))], {
    cwd: consumer,
    env: userEnv(),
  });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

describe('@dpskit/emulator/sdk installed from its tarball', () => {
  it(
    'with no SDK installed: it imports and type-checks (no skipLibCheck); a helper needing one names it',
    async () => {
      writeFileSync(
        join(consumer, 'no-sdk.ts'),
        [
          "import { type EmulatorTarget, provisioningTransport, withEmulator } from '@dpskit/emulator/sdk';",
          "const target: EmulatorTarget = { https: { host: '127.0.0.1', port: 1, provisioningHost: 'localhost' }, ca: 'x' };",
          // A class shaped as the provisioning HTTP transport: the helper loads its package's HTTP base.
          'class Http { registrationRequest(): void {} }',
          'const client = { getTwin() {}, create() {}, list() {} };',
          'const out: Record<string, unknown> = { untouched: withEmulator(client, undefined) === client };',
          'try { provisioningTransport(Http, target); } catch (err) { out.error = (err as Error).message; }',
          'console.log(JSON.stringify(out));',
        ].join('\n'),
      );
      expect(await compileAndRun('no-sdk.ts', false)).toEqual({
        untouched: true,
        error:
          '@dpskit/emulator/sdk: provisioningTransport(Http) needs the package azure-iot-provisioning-device-http, which is not installed where @dpskit/emulator can load it: npm install --save-dev azure-iot-provisioning-device-http',
      });
    },
    5 * 60_000,
  );

  it(
    'with the SDKs from npm: a strict TypeScript test file using each helper type-checks and runs green',
    async () => {
      expect(Object.keys(SDKS).length).toBeGreaterThanOrEqual(10);
      for (const [name, version] of Object.entries(SDKS)) expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
      await installTarballs(
        {
          dir: consumer,
          packages: tarballs,
          dependencies: {
            ...SDKS,
            'azure-iot-security-symmetric-key': devVersion('azure-iot-security-symmetric-key'),
            '@types/node': TYPES_NODE,
          },
        },
        root,
      );
      cpSync(
        join(root, 'packages', 'packaging', 'fixtures', 'emulator-sdk', 'consumer.ts'),
        join(consumer, 'consumer.ts'),
      );
      // skipLibCheck: the SDKs' own declarations are not ours to check.
      expect(await compileAndRun('consumer.ts', true)).toEqual({
        provisioned: {
          mqtt: 'consumer-hub.azure-devices.net',
          amqpWs: 'consumer-hub.azure-devices.net',
          http: 'consumer-hub.azure-devices.net',
        },
        twinDeviceId: 'consumer-http',
        telemetry: { 'consumer-amqp-ws': ['from consumer-amqp-ws'], 'consumer-http': ['from consumer-http'] },
        method: { status: 200, payload: { pong: 1 } },
        c2d: 'from the service',
        noTargetUntouched: true,
      });
    },
    15 * 60_000,
  );

  it(
    'a CommonJS project runs the emulator, its own allocation Function, the SDKs and a device-sim fleet under a plain jest (no flags, no config)',
    async () => {
      // Jest's module loader requires no ES module (before Node 24.9) and has no import() without
      // --experimental-vm-modules: the packages' CommonJS builds (dist/cjs) are what it loads, and the
      // local host answers @azure/functions-core inside it (apps/allocator functions-core.ts). Jest
      // is the workspace's (packages/packaging devDependency), run in the project as `npx jest` would,
      // so the consumer installs nothing more; every dpskit module comes from the tarballs.
      const project = join(consumer, 'jest-commonjs');
      cpSync(join(root, 'packages', 'packaging', 'fixtures', 'jest-commonjs'), project, { recursive: true });
      const jest = join(dirname(createRequire(import.meta.url).resolve('jest/package.json')), 'bin', 'jest.js');
      const result = await run(
        process.execPath,
        [jest, '--ci', '--json', `--cacheDirectory=${join(work, 'jest-cache')}`],
        {
          cwd: project,
          env: userEnv(),
        },
      );
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as {
        numPassedTests: number;
        numTotalTests: number;
        testResults: { name: string }[];
      };
      expect({ passed: report.numPassedTests, total: report.numTotalTests }).toEqual({ passed: 3, total: 3 });
      // The test file loaded dpskit from the tarballs, not from the workspace.
      expect(report.testResults.map((r) => r.name)).toEqual([join(project, 'test', 'provisioning.test.js')]);
      expect(result.stderr).not.toMatch(/experimental-vm-modules|did not exit/);
    },
    5 * 60_000,
  );
});
