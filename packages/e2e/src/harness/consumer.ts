import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root, from src/harness or dist/harness. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..', '..');

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: what pnpm/turbo put in ours (npm_config_* from the workspace,
 * npm_package_*, INIT_CWD) would change how npm behaves in the consumer's folder.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|INIT_CWD$|NODE_OPTIONS$|NODE_PATH$|VITEST|TURBO_)/i.test(key) && key !== 'npm_config_nodedir') {
      continue;
    }
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs a command to completion; never rejects for a non-zero exit. */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(command, [...args], {
      cwd: options.cwd,
      env: options.env ?? userEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr, message } = err as {
      code?: unknown;
      stdout?: string;
      stderr?: string;
      message: string;
    };
    return { code: typeof code === 'number' ? code : -1, stdout: stdout ?? '', stderr: `${stderr ?? ''}${message}` };
  }
}

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  overrides?: Record<string, string>;
}

/** A workspace package's folder, found the way Node finds it from `from`. */
function packageDir(name: string, from: string): string {
  return path.dirname(createRequire(path.join(from, 'package.json')).resolve(`${name}/package.json`));
}

/**
 * `pnpm pack` of the named dpskit packages and every workspace package they depend on (pnpm
 * replaces `workspace:*` with the version, as publishing does). Returns package name → tarball.
 */
export async function packDpskit(names: readonly string[], destination: string): Promise<Map<string, string>> {
  await mkdir(destination, { recursive: true });
  const dirs = new Map<string, string>();
  const queue = names.map((name) => ({ name, from: path.join(REPO_ROOT, 'packages', 'e2e') }));
  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    if (dirs.has(name)) continue;
    const dir = packageDir(name, from);
    dirs.set(name, dir);
    const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Manifest;
    for (const [dep, spec] of Object.entries(manifest.dependencies ?? {})) {
      if (spec.startsWith('workspace:')) queue.push({ name: dep, from: dir });
    }
  }
  const tarballs = new Map<string, string>();
  for (const [name, dir] of dirs) {
    const packed = await runCommand('pnpm', ['pack', '--pack-destination', destination], {
      cwd: dir,
      env: process.env,
    });
    if (packed.code !== 0) throw new Error(`pnpm pack of ${name} failed:\n${packed.stdout}${packed.stderr}`);
    const tarball = packed.stdout.trim().split('\n').at(-1)!.trim();
    tarballs.set(name, path.isAbsolute(tarball) ? tarball : path.join(destination, path.basename(tarball)));
  }
  return tarballs;
}

/**
 * Copies a consumer project (without node_modules, dist, deploy) and points its dpskit
 * dependencies at the tarballs: direct ones in place (same section, so dev stays dev), the rest
 * through `overrides`, so that npm never looks for an unpublished dpskit package in the registry.
 * Nothing else in the project changes.
 */
export async function copyConsumerProject(
  source: string,
  target: string,
  tarballs: Map<string, string>,
): Promise<void> {
  await cp(source, target, {
    recursive: true,
    filter: (src) => !/[\\/](node_modules|dist|deploy)$/.test(src),
  });
  const file = path.join(target, 'package.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  const overrides: Record<string, string> = { ...manifest.overrides };
  for (const [name, tarball] of tarballs) {
    const spec = `file:${tarball}`;
    if (manifest.dependencies?.[name]) manifest.dependencies[name] = spec;
    else if (manifest.devDependencies?.[name]) manifest.devDependencies[name] = spec;
    else overrides[name] = spec;
  }
  manifest.overrides = overrides;
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * better-sqlite3 (the emulator's SQLite binding) compiles SQLite from source when no prebuilt
 * binary can be downloaded, which takes minutes on a loaded two-core machine. The consumer gets
 * the version the workspace built (pinned with `overrides`) and, after an install with
 * `--ignore-scripts`, the very binary the workspace compiled for this Node.
 */
export async function nativeBuildReuse(): Promise<{ version: string; binary: string }> {
  const dir = packageDir('better-sqlite3', packageDir('@dpskit/emulator', path.join(REPO_ROOT, 'packages', 'e2e')));
  const { version } = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Manifest;
  return { version, binary: path.join(dir, 'build', 'Release', 'better_sqlite3.node') };
}

export async function pinNativeBuild(project: string, reuse: { version: string }): Promise<void> {
  const file = path.join(project, 'package.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  manifest.overrides = { ...manifest.overrides, 'better-sqlite3': reuse.version };
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

export async function installNativeBuild(project: string, reuse: { binary: string }): Promise<void> {
  const target = path.join(project, 'node_modules', 'better-sqlite3', 'build', 'Release');
  await mkdir(target, { recursive: true });
  await copyFile(reuse.binary, path.join(target, 'better_sqlite3.node'));
}
