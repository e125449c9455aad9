import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { PackedPackage } from './pack.js';
import { type RunResult, runOk } from './run.js';
import { findWorkspaceRoot, listWorkspacePackages } from './workspace.js';

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

const KEPT_NPM_SETTINGS =
  /^npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|cache|userconfig|globalconfig)$/i;

/**
 * Installs packed tarballs with plain `npm install` into an empty folder, as a user of the
 * published packages would. Returns npm's output.
 */
export async function installTarballs(options: InstallOptions, root: string = findWorkspaceRoot()): Promise<RunResult> {
  mkdirSync(options.dir, { recursive: true });
  const dependencies: Record<string, string> = { ...options.dependencies };
  for (const pkg of options.packages) dependencies[pkg.name] = `file:${pkg.tarball}`;
  const manifest = {
    name: 'dpskit-consumer',
    version: '0.0.0',
    private: true,
    type: 'module',
    ...options.manifest,
    dependencies,
  };
  writeFileSync(join(options.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  // What the workspace's own `pnpm run` exported (npm_config_*, npm_package_*, …) must not steer a
  // user's plain npm install; network settings stay.
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) || KEPT_NPM_SETTINGS.test(name)) env[name] = value;
  }
  Object.assign(env, nodeHeadersEnv());
  if ((options.nativeBinaries ?? 'workspace') === 'workspace') {
    Object.assign(env, workspaceNativePrebuilds(join(options.dir, '.prebuilds'), root));
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return runOk(npm, ['install', '--no-audit', '--no-fund', '--loglevel=warn'], { cwd: options.dir, env });
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
 * still compiles from source. Returns the environment to pass to npm.
 */
export function workspaceNativePrebuilds(folder: string, root: string = findWorkspaceRoot()): Record<string, string> {
  const env: Record<string, string> = {};
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
    // prebuild-install unpacks the tarball into the package folder.
    execFileSync('tar', ['-czf', join(folder, asset), '-C', packageDir, binary], { stdio: 'pipe' });
    env[`npm_config_${name.replace(/[^a-zA-Z0-9]/g, '_')}_local_prebuilds`] = folder;
  }
  return env;
}
