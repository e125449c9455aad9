import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * The compiled modules of `files` (app-relative) that are older than a source their source map
 * names: a package built from them ships the code as it was before the last edit (`dpskit-allocator
 * package .` run without the build first). Each as `{ module, source }`, app-relative. Modules
 * without a readable map, and sources that no longer exist, are skipped: this only warns.
 */
export async function staleModules(
  appDir: string,
  files: readonly string[],
): Promise<Array<{ module: string; source: string }>> {
  const stale: Array<{ module: string; source: string }> = [];
  for (const rel of files) {
    if (!/\.[cm]?js$/.test(rel)) continue;
    const file = path.join(appDir, rel);
    const sources = await mapSources(`${file}.map`);
    if (sources.length === 0) continue;
    const built = (await stat(file)).mtimeMs;
    for (const source of sources) {
      const modified = await stat(source).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      if (modified !== undefined && modified > built) {
        stale.push({ module: rel, source: path.relative(appDir, source).split(path.sep).join('/') });
        break;
      }
    }
  }
  return stale;
}

/** The absolute paths of a source map's `sources` (with its `sourceRoot`); none when it cannot be read. */
async function mapSources(mapFile: string): Promise<string[]> {
  try {
    const map = JSON.parse(await readFile(mapFile, 'utf8')) as { sources?: unknown; sourceRoot?: unknown };
    if (!Array.isArray(map.sources)) return [];
    const root = path.resolve(path.dirname(mapFile), typeof map.sourceRoot === 'string' ? map.sourceRoot : '');
    return map.sources.filter((s): s is string => typeof s === 'string').map((s) => path.resolve(root, s));
  } catch {
    return [];
  }
}
