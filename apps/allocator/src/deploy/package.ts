import { execFile } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { verifyPackagedApp } from './app-package.js';
import { compileTypeScript } from './compile.js';
import type { VerifiedApp } from './verify-app.js';
import { createZip, type ZipEntry } from './zip.js';

const run = promisify(execFile);

/** apps/allocator, from `src/deploy` or `dist/deploy`. */
export const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGE_NAME = '@dpskit/allocator';

export interface PackageOptions {
  /** Where `app/` and `allocator.zip` are written; default `apps/allocator/deploy`. */
  outDir?: string;
  /** Also write the zip (default true). */
  zip?: boolean;
  /**
   * Load a copy of the package under plain Node in an empty folder outside the repository before
   * zipping it (default true; needs the compiled packager, as `pnpm package` runs it).
   */
  verify?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface DeploymentPackage {
  /** The unpacked app: `func azure functionapp publish` runs here. */
  appDir: string;
  /** The zip of `appDir`'s contents, for `az functionapp deployment source config-zip`. */
  zipFile: string | undefined;
  fileCount: number;
  zipBytes: number | undefined;
  /** What the package registered when loaded from an empty folder (when verified). */
  verified: VerifiedApp | undefined;
}

/**
 * Builds the self-contained deployment package: `pnpm deploy --prod` with a hoisted (flat, no
 * symlinks) node_modules gives the production dependencies, including the built
 * `@dpskit/contracts` as a plain folder; the function code is compiled fresh into the package
 * (never copied from a `dist` that may be stale); pnpm's bookkeeping files are removed and
 * package.json is reduced to what the Functions host reads.
 */
export async function createDeploymentPackage(options: PackageOptions = {}): Promise<DeploymentPackage> {
  const log = options.log ?? (() => {});
  const outDir = path.resolve(options.outDir ?? path.join(PACKAGE_DIR, 'deploy'));
  const appDir = path.join(outDir, 'app');
  const zipFile = path.join(outDir, 'allocator.zip');

  await removePreviousPackage(appDir);
  await rm(zipFile, { force: true });
  await mkdir(outDir, { recursive: true });

  log(`pnpm deploy --prod → ${appDir}`);
  await pnpmDeploy(appDir);

  log('compiling the function app');
  await rm(path.join(appDir, 'dist'), { recursive: true, force: true });
  await compileTypeScript(path.join(PACKAGE_DIR, 'tsconfig.deploy.json'), path.join(appDir, 'dist'));

  await tidy(appDir);

  let verified: VerifiedApp | undefined;
  if (options.verify !== false) {
    // Inside the repository Node would also find the workspace's node_modules: load a copy outside it.
    const scratch = await mkdtemp(path.join(tmpdir(), 'dpskit-allocator-verify-'));
    try {
      await cp(appDir, path.join(scratch, 'app'), { recursive: true });
      log('loading the package under plain Node from an empty folder');
      verified = await verifyPackagedApp(path.join(scratch, 'app'));
      for (const fn of verified.functions) log(`  ${fn.name}: [${fn.methods.join(',')}] /${fn.path} (${fn.authLevel})`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  const files = await listFiles(appDir);
  let zipBytes: number | undefined;
  if (options.zip !== false) {
    log(`zipping ${files.length} files → ${zipFile}`);
    const entries: ZipEntry[] = [];
    for (const rel of files) {
      const full = path.join(appDir, rel);
      entries.push({ path: rel.split(path.sep).join('/'), data: await readFile(full), mode: (await stat(full)).mode });
    }
    const zip = createZip(entries);
    await writeFile(zipFile, zip);
    zipBytes = zip.length;
  }
  return {
    appDir,
    zipFile: options.zip === false ? undefined : zipFile,
    fileCount: files.length,
    zipBytes,
    verified,
  };
}

async function pnpmDeploy(target: string): Promise<void> {
  const args = [
    '--filter',
    PACKAGE_NAME,
    'deploy',
    '--prod',
    // A flat node_modules of real folders: zip deploy and Kudu do not reliably keep symlinks.
    '--config.node-linker=hoisted',
    target,
  ];
  try {
    await run('pnpm', args, { cwd: PACKAGE_DIR, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const { stdout, stderr, message } = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`pnpm ${args.join(' ')} failed: ${message}\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/** Refuses to delete a folder that is not a previous allocator package (e.g. a mistyped --out). */
async function removePreviousPackage(appDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(appDir);
  } catch {
    return;
  }
  if (entries.length > 0) {
    let name: unknown;
    try {
      name = (JSON.parse(await readFile(path.join(appDir, 'package.json'), 'utf8')) as { name?: unknown }).name;
    } catch {
      name = undefined;
    }
    if (name !== PACKAGE_NAME || !entries.includes('host.json')) {
      throw new Error(`Refusing to delete ${appDir}: it is not a previous ${PACKAGE_NAME} deployment package.`);
    }
  }
  await rm(appDir, { recursive: true, force: true });
}

interface PackageJson {
  name: string;
  version: string;
  description?: string;
  license?: string;
  type?: string;
  main?: string;
  exports?: unknown;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
}

/** What the Functions host needs at the root of the app; pnpm also copies the README and its own state files. */
const APP_ROOT_ENTRIES = new Set(['dist', 'host.json', 'package.json', 'node_modules']);

async function tidy(appDir: string): Promise<void> {
  for (const name of await readdir(appDir)) {
    if (!APP_ROOT_ENTRIES.has(name)) await rm(path.join(appDir, name), { recursive: true, force: true });
  }
  // pnpm's install state: meaningless on Azure and full of absolute paths of this machine.
  for (const name of ['.pnpm', '.modules.yaml', '.pnpm-workspace-state-v1.json', '.package-lock.json']) {
    await rm(path.join(appDir, 'node_modules', name), { recursive: true, force: true });
  }
  const pkg = JSON.parse(await readFile(path.join(appDir, 'package.json'), 'utf8')) as PackageJson;
  const dependencies: Record<string, string> = {};
  for (const dep of Object.keys(pkg.dependencies ?? {}).sort()) {
    const installed = JSON.parse(
      await readFile(path.join(appDir, 'node_modules', ...dep.split('/'), 'package.json'), 'utf8'),
    ) as { version: string };
    // Exact installed versions instead of `file:///<this machine>/...`; node_modules ships with the package.
    dependencies[dep] = installed.version;
  }
  const deployed = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    private: true,
    type: pkg.type,
    main: pkg.main,
    // Kept so that code in the app can import '@dpskit/allocator' (a self-reference resolves through exports).
    exports: deployedExports(pkg.exports),
    engines: pkg.engines,
    dependencies,
  };
  await writeFile(path.join(appDir, 'package.json'), `${JSON.stringify(deployed, null, 2)}\n`);
}

/** The package's exports without `types` conditions: the package ships no declarations. */
function deployedExports(exports: unknown): unknown {
  if (typeof exports !== 'object' || exports === null) return exports;
  // Each entry's ES module file: the package's CommonJS build (`require`, dist/cjs) is not compiled
  // here, and Node >= 20.19 requires the ES module (no top-level await); `types` serve no one on Azure.
  return Object.fromEntries(
    Object.entries(exports as Record<string, unknown>).map(([key, value]) => [key, esModuleTarget(value)]),
  );
}

function esModuleTarget(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const { import: esm, default: fallback } = value as { import?: unknown; default?: unknown };
  return esModuleTarget(esm ?? fallback);
}

/** Relative paths of all regular files, sorted; symlinks are refused since zip deploy would lose them. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const info = await lstat(full);
      if (info.isSymbolicLink()) throw new Error(`Unexpected symlink in the deployment package: ${full}`);
      if (info.isDirectory()) await walk(full);
      else if (info.isFile()) out.push(path.relative(root, full));
    }
  };
  await walk(root);
  return out;
}
