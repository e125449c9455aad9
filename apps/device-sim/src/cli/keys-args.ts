import { parseOptions, unknownCommand } from '@dpskit/node-kit';
import { checkKey, checkRegistrationId } from '../lib/inputs.js';
import type { Command, Env } from './args.js';
import { ENV, type Flags, forCommand, named, pick, required } from './option-values.js';

// The `keys` command line: `parseCommandLine` hands it `keys …`, and main.ts loads it alone for a
// `keys` command line. It loads neither the schema layer (zod) nor the SDK: `keys derive` is a
// filter a script may run for every few ids, and the contracts' main entry alone is about 60 ms of
// CPU at start-up (against the raw HMAC script's whole run of 60-75 ms on empty input).

const KEYS_OPTIONS = {
  'group-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function keysDeriveConfig(flags: Flags, positionals: string[], env: Env): Command {
  if (flags.help === true) return { kind: 'help', topic: 'keys derive' };
  const group = required(
    pick(flags, 'group-key', env, ENV.groupKey),
    'group-key',
    ENV.groupKey,
    'the enrollment group key to derive device keys from',
  );
  for (const id of positionals) checkRegistrationId({ field: 'registrationId', value: id });
  return {
    kind: 'keys-derive',
    config: { groupKey: checkKey(named('groupKey', group)), ids: positionals, json: flags.json === true },
  };
}

/** `device-sim keys <rest>` (`rest` without `keys`) into a command, or throws `UsageError`. */
export function parseKeysCommand(rest: readonly string[], env: Env): Command {
  const [sub, ...args] = rest;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return { kind: 'help', topic: 'keys' };
  if (sub !== 'derive') throw unknownCommand(sub, ['derive'], { label: 'keys command', command: 'keys' });
  const { values, positionals } = parseOptions(args, {
    options: KEYS_OPTIONS,
    command: 'keys derive',
    allowPositionals: true,
  });
  return forCommand('keys derive', () => keysDeriveConfig(values, positionals, env));
}
