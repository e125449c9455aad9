import { deriveDeviceKey } from '@dpskit/contracts/keys';
import { deriveKeysFromLines, formatDerivedKey } from '../../lib/keys.js';
import type { KeysDeriveConfig } from '../args.js';
import { type CliIo, EXIT } from '../io.js';

/** `device-sim keys derive`: keys for the ids given, or streamed for the ids read from stdin. */
export async function runKeysDerive(config: KeysDeriveConfig, io: CliIo): Promise<number> {
  if (config.ids.length > 0) {
    io.stdout.write(
      config.ids.map((id) => formatDerivedKey(id, deriveDeviceKey(config.groupKey, id), config.json)).join(''),
    );
    return EXIT.ok;
  }
  if (io.stdin.isTTY) {
    io.stderr.write('device-sim: reading registration ids from stdin, one a line (end with Ctrl-D)\n');
  }
  const report = await deriveKeysFromLines(io.stdin, io.stdout, {
    groupKey: config.groupKey,
    json: config.json,
    onInvalid: (line, problem) => io.stderr.write(`device-sim: line ${line} skipped: ${problem}\n`),
  });
  if (report.invalid > 0) {
    io.stderr.write(
      `device-sim: ${report.invalid} invalid registration id(s) skipped, ${report.derived} key(s) derived\n`,
    );
    return EXIT.notAssigned;
  }
  return EXIT.ok;
}
