import { UsageError } from '@dpskit/node-kit';
import { InvalidOptionError } from '../lib/errors.js';
import type { Command, Env } from './args.js';

// Taking a setting from its flag or its environment variable, shared by the command line parsers
// (args.ts, and keys-args.ts, which `keys derive` loads alone). Loads no contracts.

/** Environment variables read for each setting; a flag on the command line wins. */
export const ENV = {
  provisioningHost: 'DPS_PROVISIONING_HOST',
  idScope: 'DPS_ID_SCOPE',
  registrationId: 'DPS_REGISTRATION_ID',
  deviceKey: 'DPS_DEVICE_KEY',
  groupKey: 'DPS_GROUP_KEY',
  caFile: 'DPS_CA_FILE',
  transport: 'DPS_TRANSPORT',
  payload: 'DPS_PAYLOAD',
  pollingInterval: 'DPS_POLLING_INTERVAL',
  timeout: 'DPS_TIMEOUT',
  retries: 'DPS_RETRIES',
  registrationIdTemplate: 'DPS_REGISTRATION_ID_TEMPLATE',
  hubHost: 'DPS_HUB_HOST',
  hubTransport: 'DPS_HUB_TRANSPORT',
} as const;

export type Flags = Readonly<Record<string, string | boolean | string[] | boolean[] | undefined>>;

export interface Picked {
  value: string;
  /** `--flag` or `ENV_VAR`, for error messages. */
  source: string;
}

/** The flag's value, else the environment variable's (empty counts as unset). */
export function pick(flags: Flags, flag: string, env: Env, envName?: string): Picked | undefined {
  const fromFlag = flags[flag];
  if (typeof fromFlag === 'string') return { value: fromFlag, source: `--${flag}` };
  const fromEnv = envName === undefined ? undefined : env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: envName as string };
  return undefined;
}

export function required(picked: Picked | undefined, flag: string, envName: string | undefined, what: string): Picked {
  if (picked === undefined || picked.value.trim() === '') {
    throw new InvalidOptionError(flag, `missing --${flag}${envName ? ` (or ${envName})` : ''}: ${what}`);
  }
  return { value: picked.value.trim(), source: picked.source };
}

export const named = (field: string, picked: Picked) => ({ field, value: picked.value, source: picked.source });

/** Runs `take` for `command`; any input it refuses becomes a usage error pointing at that command's help. */
export function forCommand(command: string, take: () => Command): Command {
  try {
    return take();
  } catch (err) {
    if (err instanceof InvalidOptionError) {
      throw new UsageError(err.message, { command, ...(err.suggestion ? { suggestion: err.suggestion } : {}) });
    }
    throw err;
  }
}
