import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../lib/errors.js';
import { checkCaPem } from '../lib/inputs.js';

export type ReadTextFile = (path: string) => string;

const readUtf8: ReadTextFile = (path) => readFileSync(path, 'utf8');

/**
 * The PEM text of the CA file named by `--ca`/`DPS_CA_FILE` (`source`), read once as the command line
 * is taken in; a file that is missing, unreadable or not a PEM certificate is refused, naming it.
 */
export function readCaFile(path: string, source: string, readFile: ReadTextFile = readUtf8): string {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? String(err)})`;
    throw new InvalidOptionError('ca', `${source}: the CA file "${path}" ${why}`);
  }
  return checkCaPem({ field: 'ca', value: text, source }, `${source}: "${path}" is not a PEM certificate`);
}
