import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PackedPackage } from './pack.js';
import { type RunResult, runOk } from './run.js';
import { findWorkspaceRoot, listWorkspacePackages, type PackageManifest } from './workspace.js';

export interface InstallOptions {
  /** An empty folder outside the workspace (so nothing resolves from the workspace's node_modules). */
  dir: string;
  /** The tarballs to install. Each becomes a `file:` dependency, so their dependencies on each other resolve to them, not to the registry. */
  packages: readonly PackedPackage[];
  /** More dependencies of the consumer, as in package.json (`{"@types/node": "^20"}`). */
  dependencies?: Record<string, string>;
  /** Extra fields for the consumer's package.json (scripts, …). */
  manifest?: Record<string, unknown>;
  /**
   * Native dependencies: 'workspace' (default) hands their install scripts the binaries the
   * workspace install already built, through prebuild-install's documented local-prebuild folder,
   * as a user's machine gets them downloaded; 'compile' lets them build from source (minutes).
   */
  nativeBinaries?: 'workspace' | 'compile';
}

/** npm settings of the caller's environment that a user's shell has too: the network and npm's own files. */
const KEPT_NPM_SETTINGS =
  /^npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|cache|userconfig|globalconfig|nodedir)$/i;
/** What the workspace's `pnpm run`, turbo and vitest export into our environment. */
const TOOL_VARIABLES = /^(npm_|pnpm_|INIT_CWD$|NODE_OPTIONS$|NODE_PATH$|VITEST|TURBO_)/i;

/**
 * The environment of a user's shell, for commands run in a consumer's folder: what pnpm, turbo and
 * vitest put in ours (npm_config_* of the workspace, npm_package_*, INIT_CWD, NODE_OPTIONS, …) would
 * change how npm and Node behave there. Network settings and node-gyp's headers stay.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!TOOL_VARIABLES.test(name) || KEPT_NPM_SETTINGS.test(name)) env[name] = value;
  }
  return { ...env, ...nodeHeadersEnv(), ...extra };
}

/**
 * Installs packed tarballs with plain `npm install` into an empty folder, as a user of the
 * published packages would. Returns npm's output.
 */
export async function installTarballs(options: InstallOptions, root: string = findWorkspaceRoot()): Promise<RunResult> {
  mkdirSync(options.dir, { recursive: true });
  const dependencies: Record<string, string> = { ...options.dependencies };
  for (const pkg of options.packages) dependencies[pkg.name] = `file:${pkg.tarball}`;
  const manifest: PackageManifest = {
    name: 'dpskit-consumer',
    version: '0.0.0',
    private: true,
    type: 'module',
    ...options.manifest,
    dependencies,
  };
  return npmInstall(options.dir, manifest, options.nativeBinaries ?? 'workspace', root);
}

export interface InstallProjectOptions {
  /** The user's project to copy (its node_modules, dist and deploy folders are left behind). */
  source: string;
  /** Where the copy goes: a folder outside the workspace that does not exist yet. */
  dir: string;
  /** The tarballs its dpskit dependencies are pointed at. */
  packages: readonly PackedPackage[];
  nativeBinaries?: 'workspace' | 'compile';
}

/**
 * Copies a user's project and installs it with plain `npm install`, its dpskit dependencies pointed
 * at the tarballs: the ones it names in place (dev stays dev), the rest through `overrides`, so that
 * npm never looks for an unpublished dpskit package in the registry. Nothing else in the project
 * changes. Returns npm's output.
 */
export async function installProject(
  options: InstallProjectOptions,
  root: string = findWorkspaceRoot(),
): Promise<RunResult> {
  await cp(options.source, options.dir, {
    recursive: true,
    errorOnExist: true,
    force: false,
    filter: (src) => !/[\\/](node_modules|dist|deploy)$/.test(src),
  });
  const manifest = JSON.parse(readFileSync(join(options.dir, 'package.json'), 'utf8')) as PackageManifest;
  const overrides: Record<string, string> = { ...manifest.overrides };
  for (const pkg of options.packages) {
    const spec = `file:${pkg.tarball}`;
    if (manifest.dependencies?.[pkg.name]) manifest.dependencies[pkg.name] = spec;
    else if (manifest.devDependencies?.[pkg.name]) manifest.devDependencies[pkg.name] = spec;
    else overrides[pkg.name] = spec;
  }
  manifest.overrides = overrides;
  return npmInstall(options.dir, manifest, options.nativeBinaries ?? 'workspace', root);
}

/** Writes the manifest and runs `npm install` in `dir` with a user's environment. */
async function npmInstall(
  dir: string,
  manifest: PackageManifest,
  nativeBinaries: 'workspace' | 'compile',
  root: string,
): Promise<RunResult> {
  let env = userEnv();
  // Outside the project, so that nothing of ours ends up in what the user packages.
  const prebuildsDir = nativeBinaries === 'workspace' ? mkdtempSync(join(tmpdir(), 'dpskit-prebuilds-')) : undefined;
  try {
    if (prebuildsDir) {
      const prebuilds = workspaceNativePrebuilds(prebuildsDir, root);
      env = { ...env, ...prebuilds.env };
      // The version the prebuilt binary is for, even when the registry has a newer one by now.
      manifest.overrides = { ...manifest.overrides, ...prebuilds.versions };
    }
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'];
    return await runOk(npm, args, { cwd: dir, env });
  } finally {
    if (prebuildsDir) rmSync(prebuildsDir, { recursive: true, force: true });
  }
}

/**
 * `npm_config_nodedir` for node-gyp when Node's headers sit beside the running Node
 * (`<prefix>/include/node`, as Node's installers put them) and match its version, so a
 * from-source build needs no download. Empty when already set or not there.
 * (scripts/setup.mjs does the same before the workspace is installed.)
 */
export function nodeHeadersEnv(): Record<string, string> {
  if (process.env.npm_config_nodedir) return { npm_config_nodedir: process.env.npm_config_nodedir };
  const prefix = dirname(dirname(process.execPath));
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader)) return {};
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name: string) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.versions.node
    ? { npm_config_nodedir: prefix }
    : {};
}

/** Native dependencies whose install script is prebuild-install (falling back to node-gyp). */
const PREBUILD_INSTALL_PACKAGES = ['better-sqlite3'] as const;

/**
 * Packs the binaries the workspace install built for prebuild-install's local-prebuild lookup
 * (`npm_config_<name>_local_prebuilds`, a folder of `<name>-v<version>-node-v<abi>-<platform>-<arch>.tar.gz`):
 * the dependency's own install script then unpacks it instead of downloading one or compiling.
 * Only binaries of the exact version the workspace has are offered; another version npm picks
 * would still compile from source, so the install pins it (`versions`, for `overrides`). Returns the
 * environment to pass to npm and the versions.
 */
export function workspaceNativePrebuilds(
  folder: string,
  root: string = findWorkspaceRoot(),
): { env: Record<string, string>; versions: Record<string, string> } {
  const env: Record<string, string> = {};
  const versions: Record<string, string> = {};
  for (const name of PREBUILD_INSTALL_PACKAGES) {
    const user = listWorkspacePackages(root).find((p) => p.manifest.dependencies?.[name]);
    if (!user) continue;
    const packageJson = createRequire(join(user.dir, 'package.json')).resolve(`${name}/package.json`);
    const packageDir = dirname(packageJson);
    const binary = join('build', 'Release', `${name.replace(/-/g, '_')}.node`);
    if (!existsSync(join(packageDir, binary))) continue;
    const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
    mkdirSync(folder, { recursive: true });
    const asset = `${name}-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
    // prebuild-install unpacks the tarball into the package folder. tar reads a copy: the binary in
    // pnpm's store is one inode hard-linked into every install of it, and each link made or removed
    // meanwhile (another checkout's pnpm install) changes its ctime, which GNU tar reports as "file
    // changed as we read it" with exit status 1.
    const staged = join(folder, `.${name}-staged`);
    mkdirSync(join(staged, dirname(binary)), { recursive: true });
    copyFileSync(join(packageDir, binary), join(staged, binary));
    try {
      execFileSync('tar', ['-czf', join(folder, asset), '-C', staged, binary], { stdio: 'pipe' });
    } finally {
      rmSync(staged, { recursive: true, force: true });
    }
    env[`npm_config_${name.replace(/[^a-zA-Z0-9]/g, '_')}_local_prebuilds`] = folder;
    versions[name] = version;
  }
  return { env, versions };
}
