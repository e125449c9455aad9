import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../lib/errors.js';

/** Reads a file as text; injectable so that the command-line tests need no files. */
export type ReadTextFile = (path: string) => string;

export const readUtf8: ReadTextFile = (path) => readFileSync(path, 'utf8');

/**
 * Reads a file a flag names; a missing or unreadable one is refused as an invalid `field`, the
 * message built by `describe` from why ("does not exist", "is a directory", "cannot be read (…)").
 */
export function readNamedFile(
  path: string,
  readFile: ReadTextFile,
  field: string,
  describe: (why: string) => string,
): string {
  try {
    return readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? String(err)})`;
    throw new InvalidOptionError(field, describe(why));
  }
}
