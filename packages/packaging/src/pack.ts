import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './run.js';
import { findWorkspaceRoot, type WorkspacePackage } from './workspace.js';

export interface PackedPackage {
  name: string;
  version: string;
  /** Absolute path of the .tgz. */
  tarball: string;
  /** Paths inside the tarball, relative to its `package/` folder. */
  files: string[];
}

/** The workspace's pinned pnpm (root devDependency), else whatever `pnpm` is on the PATH. */
export function pnpmBinary(root: string = findWorkspaceRoot()): string {
  const local = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'pnpm.cmd' : 'pnpm');
  return existsSync(local) ? local : 'pnpm';
}

/**
 * `pnpm pack`s each package into `destination` exactly as `pnpm publish` would build the tarball
 * (`workspace:` ranges replaced by versions, `files` applied). The packages must be built first
 * (turbo does it before tests: depend on them in package.json).
 */
export async function packPackages(
  packages: readonly WorkspacePackage[],
  destination: string,
  root: string = findWorkspaceRoot(),
): Promise<PackedPackage[]> {
  mkdirSync(destination, { recursive: true });
  const pnpm = pnpmBinary(root);
  const packed: PackedPackage[] = [];
  // One at a time: each is quick, and parallel packs only compete for the same two cores.
  for (const pkg of packages) {
    const { stdout } = await runOk(pnpm, ['pack', '--json', '--pack-destination', destination], { cwd: pkg.dir });
    const report = JSON.parse(stdout) as { name: string; version: string; filename: string; files: { path: string }[] };
    packed.push({
      name: report.name,
      version: report.version,
      tarball: report.filename,
      files: report.files.map((f) => f.path).sort(),
    });
  }
  return packed;
}

/** Unpacks a tarball into `dir`; its contents land in `dir/package`. */
export async function extractTarball(tarball: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await runOk('tar', ['-xzf', tarball, '-C', dir], { cwd: dir });
  return join(dir, 'package');
}
