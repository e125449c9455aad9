import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The files package.json `main` matches (a path or a glob, `/`-separated, relative to `cwd`), as
 * absolute paths, as the Node worker finds them with globby: files only, `*` not matching a leading
 * dot. The usual shapes, a plain path or one `*` in the last segment (`dist/src/functions/*.js`), are
 * answered with one stat or readdir; anything else goes to tinyglobby (same pattern syntax as globby),
 * loaded only then: importing it (and picomatch) was a tenth of the local host's cold start (issue
 * #13). main-files.test.ts holds the short way to tinyglobby's answers. The short way reads the
 * folder synchronously: one readdir and a stat per match, once per app load, each of which would
 * otherwise be a thread-pool round trip on the way to the host's first answer.
 */
export async function matchMainFiles(pattern: string, cwd: string): Promise<string[]> {
  const simple = simplePattern(pattern);
  if (simple === undefined) {
    const { glob } = await import('tinyglobby');
    return glob(pattern, { cwd, absolute: true, onlyFiles: true, expandDirectories: false });
  }
  const dir = path.resolve(cwd, simple.dir);
  if (simple.star === undefined) {
    const file = path.join(dir, simple.name);
    return isFile(file) ? [file] : [];
  }
  const { prefix, suffix } = simple.star;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const matched: string[] = [];
  for (const name of names) {
    if (name.startsWith('.') || name.length < prefix.length + suffix.length) continue;
    if (!name.startsWith(prefix) || !name.endsWith(suffix)) continue;
    const file = path.join(dir, name);
    if (isFile(file)) matched.push(file);
  }
  return matched;
}

// Anything a glob library could read as more than a literal character.
const MAGIC = /[*?[\]{}()!+@\\]/;

/** `dir/name` or `dir/prefix*suffix` with nothing else special, and no `.`/`..` segments. */
function simplePattern(
  pattern: string,
): { dir: string; name: string; star?: { prefix: string; suffix: string } } | undefined {
  const slash = pattern.lastIndexOf('/');
  const dir = slash === -1 ? '' : pattern.slice(0, slash);
  const name = pattern.slice(slash + 1);
  if (name === '' || MAGIC.test(dir) || pattern.startsWith('/')) return undefined;
  if (dir.split('/').some((segment) => segment === '' || segment === '.' || segment === '..') && dir !== '') {
    return undefined;
  }
  if (name === '.' || name === '..') return undefined;
  const star = name.indexOf('*');
  if (star === -1) return MAGIC.test(name) ? undefined : { dir, name };
  const prefix = name.slice(0, star);
  const suffix = name.slice(star + 1);
  if (MAGIC.test(prefix) || MAGIC.test(suffix)) return undefined;
  return { dir, name, star: { prefix, suffix } };
}

/** A file, or a symbolic link to one (globby follows links). */
function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
