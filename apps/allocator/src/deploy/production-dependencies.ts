import { cp, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** One installed package and where it goes in the deployment's node_modules. */
export interface PlacedPackage {
  name: string;
  version: string;
  /** The installed folder (symlinks resolved). */
  source: string;
  /** Relative to the app root, e.g. `node_modules/zod` or `node_modules/a/node_modules/b`. */
  placement: string;
}

export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
}

interface Manifest {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface Wanted {
  name: string;
  optional: boolean;
  /** Real folder to resolve from (Node resolves from a package's real path). */
  from: string;
  /** Placement of the package that needs it ('' for the app). */
  parentPlacement: string;
  neededBy: string;
}

/**
 * The app's production dependencies as installed (by npm, pnpm, yarn, or `file:` links), laid
 * out as one node_modules tree of real folders that Node resolves the same way: each package is
 * found from its real location, as Node finds it, then placed at the top level when that slot is
 * free (or already holds the same folder) and otherwise nested under the package that needs it.
 * Dev dependencies are never reached: only `dependencies`, `optionalDependencies` and peers.
 * Zip deploy does not keep symlinks, so a folder of real files is the only layout that survives.
 */
export async function collectProductionDependencies(appDir: string): Promise<PlacedPackage[]> {
  const appReal = await realpath(appDir);
  const root = await readManifest(appReal);
  const placed = new Map<string, PlacedPackage>();
  const queue: Wanted[] = dependenciesOf(root, appReal, '', root.name ?? 'the app');
  while (queue.length > 0) {
    const wanted = queue.shift()!;
    const source = await resolvePackage(wanted.name, wanted.from);
    if (!source) {
      if (wanted.optional) continue;
      throw new MissingDependencyError(
        `${wanted.name} (a dependency of ${wanted.neededBy}) is not installed: run npm install (or your package manager's install) in the app folder first.`,
      );
    }
    const visible = firstOnPath(placed, wanted.parentPlacement, wanted.name);
    if (visible?.source === source) continue;
    const top = `node_modules/${wanted.name}`;
    const placement =
      !visible && !placed.has(top)
        ? top
        : `${wanted.parentPlacement ? `${wanted.parentPlacement}/` : ''}node_modules/${wanted.name}`;
    const existing = placed.get(placement);
    if (existing) {
      if (existing.source === source) continue;
      throw new Error(
        `Two installed copies of ${wanted.name} compete for ${placement}: ${existing.source} and ${source}.`,
      );
    }
    const manifest = await readManifest(source);
    const entry: PlacedPackage = { name: wanted.name, version: manifest.version ?? '0.0.0', source, placement };
    placed.set(placement, entry);
    queue.push(...dependenciesOf(manifest, source, placement, `${wanted.name}@${entry.version}`));
  }
  return [...placed.values()].sort((a, b) => a.placement.localeCompare(b.placement));
}

/** Copies each package's own files (not its nested node_modules) to its placement under `target`. */
export async function copyPackages(packages: readonly PlacedPackage[], target: string): Promise<void> {
  for (const pkg of packages) {
    const nested = path.join(pkg.source, 'node_modules');
    await cp(pkg.source, path.join(target, ...pkg.placement.split('/')), {
      recursive: true,
      dereference: true,
      filter: (src) => src !== nested,
    });
  }
}

function dependenciesOf(manifest: Manifest, from: string, parentPlacement: string, neededBy: string): Wanted[] {
  const out: Wanted[] = [];
  const seen = new Set<string>();
  const add = (names: Record<string, string> | undefined, optional: (name: string) => boolean): void => {
    for (const name of Object.keys(names ?? {})) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ name, optional: optional(name), from, parentPlacement, neededBy });
    }
  };
  add(manifest.dependencies, () => false);
  add(manifest.optionalDependencies, () => true);
  // Peers are installed beside the package by npm 7+ and pnpm; a missing one is the app's concern.
  add(manifest.peerDependencies, () => true);
  return out;
}

/** The package Node would find for `name` from `parentPlacement` among what is placed so far. */
function firstOnPath(
  placed: Map<string, PlacedPackage>,
  parentPlacement: string,
  name: string,
): PlacedPackage | undefined {
  let dir = parentPlacement;
  for (;;) {
    const found = placed.get(`${dir ? `${dir}/` : ''}node_modules/${name}`);
    if (found) return found;
    if (dir === '') return undefined;
    const index = dir.lastIndexOf('/node_modules/');
    dir = index < 0 ? '' : dir.slice(0, index);
  }
}

/** Node's lookup: `<dir>/node_modules/<name>` from `from` up to the filesystem root. */
async function resolvePackage(name: string, from: string): Promise<string | undefined> {
  let dir = from;
  for (;;) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', ...name.split('/'));
      if (await isFile(path.join(candidate, 'package.json'))) return realpath(candidate);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'package.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new Error(`${file} could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}
