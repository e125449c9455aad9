import { checkCaPem } from '../lib/inputs.js';
import { type ReadTextFile, readNamedFile, readUtf8 } from './text-file.js';

export type { ReadTextFile } from './text-file.js';

/**
 * The PEM text of the CA file named by `--ca`/`DPS_CA_FILE` (`source`), read once as the command line
 * is taken in; a file that is missing, unreadable or not a PEM certificate is refused, naming it.
 */
export function readCaFile(path: string, source: string, readFile: ReadTextFile = readUtf8): string {
  const text = readNamedFile(path, readFile, 'ca', (why) => `${source}: the CA file "${path}" ${why}`);
  return checkCaPem({ field: 'ca', value: text, source }, `${source}: "${path}" is not a PEM certificate`);
}
