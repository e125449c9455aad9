import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fields of a package.json this package reads. */
export interface PackageManifest {
  name: string;
  version?: string;
  private?: boolean;
  license?: string;
  homepage?: string;
  repository?: { type?: string; url?: string; directory?: string } | string;
  engines?: Record<string, string>;
  files?: string[];
  bin?: Record<string, string> | string;
  exports?: unknown;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  /** npm's: versions (or `file:` specs) forced for a package anywhere in the tree. */
  overrides?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [field: string]: unknown;
}

export interface WorkspacePackage {
  name: string;
  /** Absolute folder. */
  dir: string;
  /** Folder relative to the workspace root, with forward slashes (`apps/emulator`). */
  relativeDir: string;
  manifest: PackageManifest;
}

/** The folder holding pnpm-workspace.yaml, searched upwards from `from` (default: this file). */
export function findWorkspaceRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${from}`);
    dir = parent;
  }
}

/**
 * The workspace's packages, from pnpm-workspace.yaml's `packages:` list. Only the `folder/*` and
 * plain `folder` forms are understood, which is what this workspace uses; anything else is an error
 * rather than a silently shorter list.
 */
export function listWorkspacePackages(root: string = findWorkspaceRoot()): WorkspacePackage[] {
  const patterns = workspacePatterns(readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8'));
  const dirs: string[] = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('/*') && !pattern.slice(0, -2).includes('*')) {
      const parent = join(root, pattern.slice(0, -2));
      if (!existsSync(parent)) continue;
      for (const entry of readdirSync(parent, { withFileTypes: true })) {
        if (entry.isDirectory()) dirs.push(join(parent, entry.name));
      }
    } else if (!pattern.includes('*')) {
      dirs.push(join(root, pattern));
    } else {
      throw new Error(`pnpm-workspace.yaml: unsupported package pattern "${pattern}"`);
    }
  }
  return dirs
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageManifest;
      return { name: manifest.name, dir, relativeDir: relative(root, dir).split(sep).join('/'), manifest };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The packages meant for the registry: every workspace package not marked `"private": true`. */
export function publishablePackages(root: string = findWorkspaceRoot()): WorkspacePackage[] {
  return listWorkspacePackages(root).filter((p) => p.manifest.private !== true);
}

function workspacePatterns(yaml: string): string[] {
  const patterns: string[] = [];
  let inPackages = false;
  for (const line of yaml.split(/\r?\n/)) {
    if (/^packages:\s*$/.test(line)) {
      inPackages = true;
      continue;
    }
    if (!inPackages) continue;
    const item = line.match(/^\s+-\s+['"]?([^'"#]+?)['"]?\s*(#.*)?$/);
    if (item?.[1]) patterns.push(item[1]);
    else if (/^\S/.test(line)) inPackages = false;
  }
  return patterns;
}

/**
 * The named workspace packages and every workspace package they need at run time (`workspace:`
 * dependencies, peer and optional ones included, transitively): what a user installing the named
 * ones from the registry gets. Throws for a name that is not a workspace package.
 */
export function withWorkspaceDependencies(
  names: readonly string[],
  root: string = findWorkspaceRoot(),
): WorkspacePackage[] {
  const all = new Map(listWorkspacePackages(root).map((p) => [p.name, p]));
  const chosen = new Map<string, WorkspacePackage>();
  const queue = [...names];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (chosen.has(name)) continue;
    const pkg = all.get(name);
    if (!pkg) throw new Error(`${name} is not a package of the workspace at ${root}`);
    chosen.set(name, pkg);
    const { dependencies, peerDependencies, optionalDependencies } = pkg.manifest;
    for (const [dep, spec] of Object.entries({ ...dependencies, ...peerDependencies, ...optionalDependencies })) {
      if (spec.startsWith('workspace:')) queue.push(dep);
    }
  }
  return [...chosen.values()].sort((a, b) => a.name.localeCompare(b.name));
}
