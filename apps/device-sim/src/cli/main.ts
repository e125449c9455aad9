import { createRequire } from 'node:module';
import { reportUsageError, UsageError } from '@dpskit/node-kit';
import { InvalidOptionError } from '../lib/errors.js';
import type { Command } from './args.js';
import { HELP } from './help.js';
import { type CliIo, EXIT } from './io.js';

export { type CliIo, EXIT };

async function versionLine(): Promise<string> {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version?: string };
  const { sdkApiVersion, sdkVersion } = await import('../lib/sdk/modules.js');
  return `device-sim ${pkg.version ?? '0.0.0'} (azure-iot-provisioning-device ${sdkVersion()}, DPS api-version ${sdkApiVersion()})\n`;
}

/** Runs one `device-sim` command line; resolves with the process exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Command;
  try {
    // A `keys` command line loads its own parser alone: args.ts brings the payload schema and with it
    // the contracts' zod layer (~60 ms of CPU at start-up), which `keys derive` never uses. Both
    // parsers give the same command: parseCommandLine hands `keys …` to parseKeysCommand.
    command =
      argv[0] === 'keys'
        ? (await import('./keys-args.js')).parseKeysCommand(argv.slice(1), io.env)
        : (await import('./args.js')).parseCommandLine(argv, io.env);
  } catch (err) {
    if (err instanceof UsageError) {
      if (argv.length === 0) {
        io.stderr.write(HELP.main);
        return EXIT.usage;
      }
      return reportUsageError('device-sim', io.stderr, err);
    }
    throw err;
  }
  try {
    switch (command.kind) {
      case 'help':
        io.stdout.write(HELP[command.topic]);
        return EXIT.ok;
      case 'version':
        io.stdout.write(await versionLine());
        return EXIT.ok;
      // The runners load the SDK; a usage error or --help never does.
      case 'register':
        return await (await import('./commands/register.js')).runRegister(command.config, io);
      case 'fleet':
        return await (await import('./commands/fleet.js')).runFleetCommand(command.config, io);
      case 'keys-derive':
        return await (await import('./commands/keys-derive.js')).runKeysDerive(command.config, io);
      case 'certs-create':
        return await (await import('./commands/certs.js')).runCertsCreate(command.config, io);
      case 'certs-thumbprint':
        return await (await import('./commands/certs.js')).runCertsThumbprint(command.config, io);
    }
  } catch (err) {
    // The library refuses an option the command line let through: still the user's input.
    if (err instanceof InvalidOptionError) {
      return reportUsageError('device-sim', io.stderr, new UsageError(err.message));
    }
    throw err;
  }
}
