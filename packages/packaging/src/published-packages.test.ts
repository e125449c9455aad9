import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConsumerTsconfig } from './consumer-tsconfig.js';
import { installTarballs } from './install.js';
import { extractTarball, type PackedPackage, packPackages } from './pack.js';
import { run } from './run.js';
import { findWorkspaceRoot, type PackageManifest, publishablePackages, type WorkspacePackage } from './workspace.js';

// dpskit as its users get it: every publishable package packed with `pnpm pack` (what `pnpm publish`
// uploads), the tarballs installed with plain npm into an empty folder outside the workspace, then
// its bins run with npx and its packages imported by name under plain Node and TypeScript.

const root = findWorkspaceRoot();
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageManifest;
const publishable = publishablePackages(root);
const EXPECTED_BINS = {
  'dps-emulator': '@dpskit/emulator',
  'device-sim': '@dpskit/device-sim',
  'dpskit-allocator': '@dpskit/allocator',
};

let work: string;
let consumer: string;
let packed: PackedPackage[];
const unpacked = new Map<string, string>();

beforeAll(async () => {
  // Outside the workspace, so nothing can resolve from its node_modules.
  work = mkdtempSync(join(tmpdir(), 'dpskit-packed-'));
  packed = await packPackages(publishable, join(work, 'tarballs'), root);
  for (const pkg of packed) unpacked.set(pkg.name, await extractTarball(pkg.tarball, join(work, 'unpacked', pkg.name)));
  consumer = join(work, 'consumer');
  await installTarballs(
    {
      dir: consumer,
      packages: packed,
      // what a TypeScript user has anyway
      dependencies: {
        '@types/node': (rootManifest.devDependencies as Record<string, string>)['@types/node'] as string,
      },
    },
    root,
  );
}, 15 * 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
}, 10 * 60_000);

const TOASTER_ANSWER = { status: 200, body: { iotHubHostName: 'contoso-toasters-hub-1098.azure-devices.net' } };

/** A Functions app without "type": "module" whose one function `require`s @dpskit/allocator, in a new folder of the consumer. */
function writeCommonJsFunctionsApp(): string {
  const app = mkdtempSync(join(consumer, 'cjs-functions-app-'));
  mkdirSync(join(app, 'functions'), { recursive: true });
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'cjs-app', version: '1.0.0', main: 'functions/*.js' }),
  );
  writeFileSync(join(app, 'host.json'), JSON.stringify({ version: '2.0' }));
  writeFileSync(
    join(app, 'functions', 'allocate.js'),
    `'use strict';
const { accept, registerAllocationFunction } = require('@dpskit/allocator');
registerAllocationFunction('allocate', { policy: (request) => accept({ iotHubHostName: request.linkedHubs[0] }) });
`,
  );
  return app;
}

function manifestOf(name: string): PackageManifest {
  return JSON.parse(readFileSync(join(unpacked.get(name) as string, 'package.json'), 'utf8')) as PackageManifest;
}

/** Every file an `exports` map points at. */
function exportTargets(exportsField: unknown): string[] {
  if (typeof exportsField === 'string') return [exportsField];
  if (exportsField && typeof exportsField === 'object') return Object.values(exportsField).flatMap(exportTargets);
  return [];
}

describe('the publishable packages', () => {
  it('are the four user-facing packages and every workspace package they depend on', () => {
    const names = publishable.map((p) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(['@dpskit/contracts', '@dpskit/emulator', '@dpskit/device-sim', '@dpskit/allocator']),
    );
    // A dependency on a private workspace package would install from the registry, or not at all.
    for (const pkg of publishable) {
      const runtime = {
        ...pkg.manifest.dependencies,
        ...pkg.manifest.peerDependencies,
        ...pkg.manifest.optionalDependencies,
      };
      for (const dep of Object.keys(runtime).filter((d) => runtime[d]?.startsWith('workspace:'))) {
        expect(names, `${pkg.name} depends on ${dep}`).toContain(dep);
      }
    }
  });

  it.each(publishable.map((p) => [p.name, p] as const))('%s has the fields a registry package needs', (name, pkg) => {
    const manifest = manifestOf(name);
    expect(manifest.private).toBeUndefined();
    expect(manifest.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(manifest.license).toBe('MIT');
    expect(manifest.engines?.node).toBe(rootManifest.engines?.node);
    expect(manifest.files?.length).toBeGreaterThan(0);
    expect(typeof manifest.description).toBe('string');
    const rootRepository = rootManifest.repository as { url: string };
    expect(manifest.repository).toEqual({
      type: 'git',
      url: rootRepository.url,
      directory: (pkg as WorkspacePackage).relativeDir,
    });
    // Every package names the project's one home (the root manifest's repository) and its own folder there.
    const home = rootRepository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    expect(home).toMatch(/^https:\/\/github\.com\/[^/]+\/[^/]+$/);
    expect(manifest.homepage).toBe(`${home}/tree/main/${(pkg as WorkspacePackage).relativeDir}#readme`);
    expect(manifest.bugs).toEqual(rootManifest.bugs);
    expect(rootManifest.bugs).toEqual({ url: `${home}/issues` });
    expect(rootManifest.homepage).toBe(`${home}#readme`);
    // pnpm pack replaced the workspace ranges with versions
    expect(JSON.stringify(manifest.dependencies ?? {})).not.toContain('workspace:');
    // Every entry has an ES module build and a CommonJS one (dist/cjs, for require and Jest), each with its types.
    const entries = Object.entries(manifest.exports as Record<string, unknown>).filter(
      ([, t]) => typeof t !== 'string',
    );
    expect(entries.map(([subpath]) => subpath)).toContain('.');
    for (const [subpath, target] of entries) {
      const { import: esm, require: cjs } = target as Record<string, Record<string, string>>;
      expect(esm?.types, `${subpath} import types`).toMatch(/^\.\/dist\/(?!cjs\/).*\.d\.ts$/);
      expect(esm?.default, `${subpath} import`).toMatch(/^\.\/dist\/(?!cjs\/).*\.js$/);
      expect(cjs, `${subpath} require`).toEqual({
        types: esm?.types?.replace(/^\.\/dist\//, './dist/cjs/'),
        default: esm?.default?.replace(/^\.\/dist\//, './dist/cjs/'),
      });
    }
  });

  it.each(publishable.map((p) => [p.name]))('%s ships its README, the LICENSE, and no tests', (name) => {
    const files = packed.find((p) => p.name === name)?.files ?? [];
    expect(files).toContain('README.md');
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(unpacked.get(name) as string, 'LICENSE'), 'utf8')).toBe(
      readFileSync(join(root, 'LICENSE'), 'utf8'),
    );
    expect(files.filter((f) => /\.test\.|(^|\/)(testing|test)\//.test(f))).toEqual([]);
  });

  it('@dpskit/emulator ships its web view built, self-contained (works offline)', () => {
    const files = packed.find((p) => p.name === '@dpskit/emulator')?.files ?? [];
    expect(files).toEqual(
      expect.arrayContaining(['dist/web-ui/index.html', 'dist/web-ui/app.js', 'dist/web-ui/app.css']),
    );
    const dir = unpacked.get('@dpskit/emulator') as string;
    const html = readFileSync(join(dir, 'dist/web-ui/index.html'), 'utf8');
    // Nothing fetched from elsewhere: every script and style is the package's own.
    expect(html.match(/(?:src|href)="[^"]*"/g)).toEqual(['href="/app.css"', 'src="/app.js"']);
    expect(readFileSync(join(dir, 'dist/web-ui/app.js'), 'utf8')).not.toMatch(/\bimport\s*\(?\s*["']https?:/);
  });

  it.each(publishable.map((p) => [p.name]))('%s points only at files it ships (exports, bins, maps)', (name) => {
    const dir = unpacked.get(name) as string;
    const manifest = manifestOf(name);
    const files = new Set(packed.find((p) => p.name === name)?.files ?? []);
    for (const target of exportTargets(manifest.exports)) {
      expect(existsSync(join(dir, target)), `exports → ${target}`).toBe(true);
    }
    // `main`, for tools that read no `exports`: the CommonJS build (the allocator's is its Functions app's glob).
    if (typeof manifest.main === 'string' && !manifest.main.includes('*')) {
      expect(manifest.main, 'main').toMatch(/^\.\/dist\/cjs\//);
      expect(existsSync(join(dir, manifest.main)), `main → ${manifest.main}`).toBe(true);
    }
    for (const [bin, target] of Object.entries(
      typeof manifest.bin === 'string' ? { [name]: manifest.bin } : (manifest.bin ?? {}),
    )) {
      expect(existsSync(join(dir, target)), `bin ${bin} → ${target}`).toBe(true);
      expect(readFileSync(join(dir, target), 'utf8').startsWith('#!/usr/bin/env node\n'), `${target} shebang`).toBe(
        true,
      );
    }
    // Source and declaration maps must resolve to shipped sources, or editors and stack traces lead nowhere.
    const maps = [...files].filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const shipped = resolve(dirname(join(dir, map)), source)
          .slice(dir.length + 1)
          .split('\\')
          .join('/');
        expect(files.has(shipped), `${map} → ${source}`).toBe(true);
      }
    }
  });
});

describe('installed from the tarballs with plain npm', () => {
  it.each(Object.entries(EXPECTED_BINS))('npx %s --help works (from %s)', async (bin) => {
    const args = bin === 'dps-emulator' ? ['start', '--help'] : ['--help'];
    // --no-install: the bin must come from the installed tarball, never from the registry.
    const result = await run('npx', ['--no-install', bin, ...args], { cwd: consumer });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/usage/i);
    expect(result.stdout).toContain(bin);
  });

  it('imports every package by name under plain Node', async () => {
    const script = `
      const names = ${JSON.stringify(publishable.map((p) => p.name))};
      const out = {};
      for (const name of names) out[name] = Object.keys(await import(name)).length;
      const { deriveDeviceKey } = await import('@dpskit/contracts');
      out.key = deriveDeviceKey('oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==', 'contoso-toaster-007');
      // The allocation entry loads its implementation (a CommonJS script beside it) on its first parse:
      // parse through it from the tarball, and check its errors are the main entry's class.
      const allocation = await import('@dpskit/contracts/allocation');
      const { ContractValidationError } = await import('@dpskit/contracts');
      const { TOASTER_REQUEST_2021_10_01 } = await import('@dpskit/contracts/fixtures');
      const toaster = allocation.parseAllocationRequestJson(TOASTER_REQUEST_2021_10_01);
      out.toaster = toaster.ok ? toaster.value.deviceRuntimeContext.registrationId : toaster.error.message;
      const bad = allocation.parseAllocationRequest({ deviceRuntimeContext: {} });
      out.badIsContractError = !bad.ok && bad.error instanceof ContractValidationError;
      console.log(JSON.stringify(out));`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer });
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    for (const { name } of publishable) expect(out[name], name).toBeGreaterThan(0);
    expect(out.key).toBe('NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=');
    expect(out.toaster).toBe('contoso-toaster-007');
    expect(out.badIsContractError).toBe(true);
  });

  it('requires every package by name from CommonJS (its CommonJS build), and serves a CommonJS Functions app that requires @dpskit/allocator', async () => {
    // A `require`-based project (mocha, node --test, Jest, an Azure Functions app without "type": "module")
    // gets each package's CommonJS build (dist/cjs): with Node's require(esm) turned off, so that an ES
    // module anywhere on the way fails (as it does in Jest's loader, which cannot require one).
    const app = writeCommonJsFunctionsApp();
    const entries = [...publishable.map((p) => p.name), '@dpskit/emulator/sdk', '@dpskit/contracts/allocation'];
    const script = `
      const out = { files: {} };
      for (const name of ${JSON.stringify(entries)}) {
        out[name] = Object.keys(require(name)).length;
        out.files[name] = require.resolve(name);
      }
      const { startAllocatorHost } = require('@dpskit/allocator');
      const { TOASTER_REQUEST_2021_10_01 } = require('@dpskit/contracts/fixtures');
      (async () => {
        const host = await startAllocatorHost({ appDir: ${JSON.stringify(app)}, port: 0, log: () => {} });
        const res = await fetch(host.webhookUrl, { method: 'POST', body: TOASTER_REQUEST_2021_10_01 });
        out.answer = { status: res.status, body: await res.json() };
        await host.close();
        console.log(JSON.stringify(out));
      })();`;
    const result = await run(process.execPath, ['--no-experimental-require-module', '-e', script], { cwd: consumer });
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout) as Record<string, unknown> & { files: Record<string, string> };
    for (const name of entries) {
      expect(out[name], name).toBeGreaterThan(0);
      expect(out.files[name], name).toMatch(/[\\/]dist[\\/]cjs[\\/][^\\/]+/);
    }
    expect(out.answer).toEqual(TOASTER_ANSWER);
  });

  it('serves one CommonJS Functions app from a host of each build in one process (state shared across the two copies)', async () => {
    // The dual package hazard: an ES module test importing @dpskit/allocator and a CommonJS one
    // requiring it get two copies of the local host. Node evaluates the app's module once, and
    // @azure/functions keeps the first core API it is given: what the app registered must reach both.
    const app = writeCommonJsFunctionsApp();
    const script = `
      import { createRequire } from 'node:module';
      import * as esm from '@dpskit/allocator';
      import { TOASTER_REQUEST_2021_10_01 } from '@dpskit/contracts/fixtures';
      const cjs = createRequire(import.meta.url)('@dpskit/allocator');
      const out = { twoCopies: esm.startAllocatorHost !== cjs.startAllocatorHost };
      for (const [build, { startAllocatorHost }] of [['cjs', cjs], ['esm', esm]]) {
        const host = await startAllocatorHost({ appDir: ${JSON.stringify(app)}, port: 0, log: () => {} });
        const res = await fetch(host.webhookUrl, { method: 'POST', body: TOASTER_REQUEST_2021_10_01 });
        out[build] = { status: res.status, body: await res.json() };
        await host.close();
      }
      console.log(JSON.stringify(out));`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ twoCopies: true, cjs: TOASTER_ANSWER, esm: TOASTER_ANSWER });
  });

  it(
    'type-checks a consumer that imports every package, from an ES module and from CommonJS (strict, NodeNext, lib ES2023, no skipLibCheck)',
    async () => {
      writeConsumerTsconfig(consumer, ['consumer.ts', 'consumer-commonjs.cts'], { skipLibCheck: false });
      // A .cts file is CommonJS: its imports resolve through each entry's `require` condition, to the
      // declarations of the CommonJS build (dist/cjs), which must be complete on their own.
      writeFileSync(
        join(consumer, 'consumer-commonjs.cts'),
        `${[...publishable.map((p) => p.name), '@dpskit/emulator/sdk', '@dpskit/contracts/allocation']
          .map((name, i) => `import * as c${i} from '${name}';`)
          .join('\n')}\n` +
          `import { createEmulator, type Emulator } from '@dpskit/emulator';\n` +
          `export const emulator: Emulator | undefined = undefined;\n` +
          `export const all = [createEmulator, ${publishable.map((_, i) => `c${i}`).join(', ')}];\n`,
      );
      writeFileSync(
        join(consumer, 'consumer.ts'),
        `${publishable.map((p, i) => `import * as p${i} from '${p.name}';`).join('\n')}\n` +
          `import { deriveDeviceKey } from '@dpskit/contracts';\n` +
          // The SDK helpers' declarations name no SDK type (emulator-sdk.test.ts checks them with none installed).
          `import { type EmulatorTarget, withEmulator } from '@dpskit/emulator/sdk';\n` +
          `const target: EmulatorTarget = { mqtt: { port: 1, provisioningHost: 'localhost:1' }, ca: '' };\n` +
          `export const registry = withEmulator({ getTwin() {}, create() {}, list() {} }, target);\n` +
          `const key: string = deriveDeviceKey('a2V5', 'id');\n` +
          `export const all = [${publishable.map((_, i) => `p${i}`).join(', ')}, key];\n`,
      );
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer });
      expect(result.stdout + result.stderr).toBe('');
      expect(result.code).toBe(0);
      // tsc reads every declaration the packages and their dependencies ship: minutes on a busy 2-core machine
    },
    5 * 60_000,
  );
});
