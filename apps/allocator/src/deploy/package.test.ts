import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnNode } from '../testing/process.js';
import { TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { readZip } from '../testing/unzip.js';
import { createDeploymentPackage, type DeploymentPackage, listFiles, PACKAGE_DIR } from './package.js';

/** The workspace's dev tools: none of them may end up in the deployment package. */
const DEV_TOOLS = ['typescript', 'vitest', '@biomejs/biome', 'turbo', '@types/node', 'vite'];

interface Manifest {
  name: string;
  main?: string;
  scripts?: unknown;
  devDependencies?: unknown;
  dependencies?: Record<string, string>;
}

async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Every package folder under node_modules (scoped ones as `@scope/name`), nested ones included. */
async function installedPackages(nodeModules: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const dirs = name.startsWith('@') ? (await readdir(path.join(dir, name))).map((n) => `${name}/${n}`) : [name];
      for (const pkg of dirs) {
        found.push(pkg);
        await visit(path.join(dir, pkg, 'node_modules'));
      }
    }
  };
  await visit(nodeModules);
  return found;
}

describe('deployment package', () => {
  let work: string;
  let result: DeploymentPackage;
  let unpacked: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'dpskit-allocator-package-'));
    // The packager's own load check needs its compiled verifier; this test loads the unpacked zip itself below.
    result = await createDeploymentPackage({ outDir: path.join(work, 'out'), verify: false });
    // Unpack the zip into an empty folder outside the repository, as Azure's zip deploy does.
    unpacked = path.join(work, 'unpacked');
    await mkdir(unpacked);
    for (const entry of await readZip(await readFile(result.zipFile!))) {
      const target = path.join(unpacked, ...entry.path.split('/'));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, entry.data, { mode: entry.mode });
    }
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds compiled code, host.json, package.json and node_modules only', async () => {
    expect((await readdir(result.appDir)).sort()).toEqual(['dist', 'host.json', 'node_modules', 'package.json']);
    expect(await readFile(path.join(result.appDir, 'host.json'), 'utf8')).toBe(
      await readFile(path.join(PACKAGE_DIR, 'host.json'), 'utf8'),
    );
    const files = await listFiles(path.join(result.appDir, 'dist'));
    expect(files).toContain(path.join('functions', 'allocate.js'));
    expect(files.filter((f) => /\.test\.|\.ts$|^deploy|^test/.test(f))).toEqual([]);
  });

  it('zips exactly the package folder', async () => {
    const inFolder = (await listFiles(result.appDir)).map((f) => f.split(path.sep).join('/'));
    const inZip = (await listFiles(unpacked)).map((f) => f.split(path.sep).join('/'));
    expect(inZip).toEqual(inFolder);
    expect(result.fileCount).toBe(inFolder.length);
  });

  it('has a package.json with main for the Functions host and no scripts or dev dependencies', async () => {
    const manifest = await readManifest(unpacked);
    expect(manifest.name).toBe('@dpskit/allocator');
    expect(manifest.main).toBe('dist/functions/*.js');
    expect(manifest.scripts).toBeUndefined();
    expect(manifest.devDependencies).toBeUndefined();
    expect(Object.keys(manifest.dependencies ?? {})).toEqual([
      '@azure/functions',
      '@dpskit/contracts',
      '@dpskit/node-kit',
      'fflate',
      'ignore',
      'tinyglobby',
    ]);
    expect(JSON.stringify(manifest)).not.toContain('file:');
  });

  it('contains only production dependencies, with @dpskit/contracts built', async () => {
    const nodeModules = path.join(unpacked, 'node_modules');
    const installed = await installedPackages(nodeModules);
    for (const tool of DEV_TOOLS) expect(installed).not.toContain(tool);

    // Every installed package is reachable from the app's dependencies: nothing else slipped in.
    const reachable = new Set<string>();
    const queue = Object.keys((await readManifest(unpacked)).dependencies ?? {});
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (reachable.has(name)) continue;
      reachable.add(name);
      const manifest = await readManifest(path.join(nodeModules, ...name.split('/')));
      queue.push(...Object.keys(manifest.dependencies ?? {}));
    }
    expect(installed.sort()).toEqual([...reachable].sort());

    const contracts = path.join(nodeModules, '@dpskit', 'contracts');
    // pnpm, like npm, packs a package's README and LICENSE whatever its `files` list says; `src` is
    // shipped for the source and declaration maps.
    expect((await readdir(contracts)).sort()).toEqual(['LICENSE', 'README.md', 'dist', 'package.json', 'src']);
    expect((await listFiles(contracts)).some((f) => f.endsWith(path.join('dist', 'index.js')))).toBe(true);
  });

  it('loads under plain Node from the empty folder: every module of main registers its function', async () => {
    const script = `
      import { readdir } from 'node:fs/promises';
      const names = [];
      for (const file of (await readdir('./dist/functions')).filter((f) => f.endsWith('.js'))) {
        const mod = await import('./dist/functions/' + file);
        for (const value of Object.values(mod)) if (value && value.options && value.name) names.push(value.name + ':' + value.options.methods.join(','));
      }
      console.log(JSON.stringify(names));
    `;
    const child = spawnNode(['--input-type=module', '-e', script], { cwd: unpacked });
    expect(await child.exited).toBe(0);
    expect(child.lines.at(-1)).toBe('["allocate:POST"]');
    // app.http was reached: outside the Functions host it can only report the skipped registration.
    expect(child.stderr()).toContain('Skipping call to register function "allocate"');
  });

  it("resolves '@dpskit/allocator' from code inside the package (self-reference through exports)", async () => {
    const script = `const m = await import('@dpskit/allocator'); console.log(typeof m.registerAllocationFunction, typeof m.accept);`;
    const child = spawnNode(['--input-type=module', '-e', script], { cwd: unpacked });
    expect(await child.exited).toBe(0);
    expect(child.lines.at(-1)).toBe('function function');
  });

  it('names in its exports only files it ships, for import and require alike', async () => {
    // The package's own exports also name the CommonJS build (dist/cjs), which the deployment package
    // does not compile: each entry maps to its ES module file, which Node >= 20.19 requires too.
    const manifest = JSON.parse(await readFile(path.join(unpacked, 'package.json'), 'utf8')) as { exports: unknown };
    expect(manifest.exports).toEqual({ '.': './dist/index.js', './package.json': './package.json' });
    const script = `const m = require('@dpskit/allocator'); console.log(typeof m.registerAllocationFunction);`;
    const child = spawnNode(['-e', script], { cwd: unpacked });
    expect(await child.exited).toBe(0);
    expect(child.lines.at(-1)).toBe('function');
  });

  it('serves the tutorial toaster from the unpacked folder with production dependencies only', async () => {
    const child = spawnNode(['dist/local-host/cli.js', '--port', '0', '--json'], {
      cwd: unpacked,
      env: { ...process.env, ALLOCATOR_FUNCTION_KEY: 'package-test-key' },
    });
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
      const url = (JSON.parse(line) as { data: { url: string } }).data.url;
      const res = await fetch(`${url}/api/allocate?code=package-test-key`, { method: 'POST', body: TOASTER_BODY });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`{"iotHubHostName":"${TOASTERS_HUB}"}`);
    } finally {
      await child.stop();
    }
  });

  it('refuses to overwrite a folder that is not a previous package', async () => {
    const outDir = path.join(work, 'not-a-package');
    await mkdir(path.join(outDir, 'app'), { recursive: true });
    await writeFile(path.join(outDir, 'app', 'precious.txt'), 'keep me');
    await expect(createDeploymentPackage({ outDir, verify: false })).rejects.toThrow(
      /Refusing to delete .*not a previous/,
    );
    expect(await readFile(path.join(outDir, 'app', 'precious.txt'), 'utf8')).toBe('keep me');
  });
});
