import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { decodeBase64Key, KeyError, registrationIdProblem } from '@dpskit/contracts';
import { InvalidOptionError } from '../lib/errors.js';
import { DEFAULT_CONCURRENCY, MAX_FLEET_COUNT, parseTemplates } from '../lib/fleet.js';
import { parsePayload } from '../lib/payload.js';
import { fleetTemplatesProblem } from '../lib/template.js';
import { parseProvisioningHost } from '../lib/transport/endpoint.js';
import { DEFAULT_PROVISIONING_HOST, TRANSPORTS, type TransportName } from '../lib/types.js';

/** A command line that cannot run; `command` names the help to point at (`register`, `fleet`, ...). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

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
  registrationIdTemplate: 'DPS_REGISTRATION_ID_TEMPLATE',
} as const;

export const DEFAULT_TIMEOUT_SECONDS = 120;

export interface ConnectionConfig {
  provisioningHost: string;
  idScope: string;
  transport: TransportName;
  payload?: Record<string, unknown>;
  /** PEM text of the CA file, and the file it came from. */
  ca?: string;
  caFile?: string;
  pollingIntervalMs?: number;
  /** 0 = no limit. */
  timeoutMs: number;
  json: boolean;
}

export interface RegisterConfig extends ConnectionConfig {
  registrationId: string;
  deviceKey?: string;
  groupKey?: string;
}

export interface FleetConfig extends ConnectionConfig {
  groupKey: string;
  count: number;
  concurrency: number;
  templates: string[];
  start: number;
  /** Draw a progress bar (only on a terminal). */
  progress: boolean;
}

export interface KeysDeriveConfig {
  groupKey: string;
  /** Empty: read ids from stdin. */
  ids: string[];
  json: boolean;
}

export type Command =
  | { kind: 'help'; topic: HelpTopic }
  | { kind: 'version' }
  | { kind: 'register'; config: RegisterConfig }
  | { kind: 'fleet'; config: FleetConfig }
  | { kind: 'keys-derive'; config: KeysDeriveConfig };

export type HelpTopic = 'main' | 'register' | 'fleet' | 'keys' | 'keys derive';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigDeps {
  readFile?: (path: string) => string;
}

const CONNECTION_OPTIONS = {
  'provisioning-host': { type: 'string' },
  'id-scope': { type: 'string' },
  'group-key': { type: 'string' },
  transport: { type: 'string' },
  payload: { type: 'string' },
  ca: { type: 'string' },
  'polling-interval': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const REGISTER_OPTIONS = {
  ...CONNECTION_OPTIONS,
  'registration-id': { type: 'string' },
  'device-key': { type: 'string' },
} as const;

const FLEET_OPTIONS = {
  ...CONNECTION_OPTIONS,
  count: { type: 'string' },
  concurrency: { type: 'string' },
  'registration-id-template': { type: 'string', multiple: true },
  start: { type: 'string' },
  'no-progress': { type: 'boolean' },
} as const;

const KEYS_OPTIONS = {
  'group-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Picked {
  value: string;
  /** `--flag` or `ENV_VAR`, for error messages. */
  source: string;
}

/** The flag's value, else the environment variable's (empty counts as unset). */
function pick(flags: Record<string, unknown>, flag: string, env: Env, envName: string): Picked | undefined {
  const fromFlag = flags[flag];
  if (typeof fromFlag === 'string') return { value: fromFlag, source: `--${flag}` };
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: envName };
  return undefined;
}

function parse(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  command: string,
  allowPositionals: boolean,
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals });
    return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`unknown option ${unknown[1]}`, command);
    const positional = /Unexpected argument '([^']+)'/.exec(message);
    if (positional) throw new UsageError(`unexpected argument "${positional[1]}"`, command);
    const missing = /Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(message);
    if (missing) throw new UsageError(`${missing[1]} needs a value`, command);
    const ambiguous = /Option '(?:-\w, )?(--[\w-]+)' argument is ambiguous/.exec(message);
    if (ambiguous) {
      throw new UsageError(
        `${ambiguous[1]} needs a value (a value starting with "-" is written ${ambiguous[1]}=-value)`,
        command,
      );
    }
    throw new UsageError(message.replace(/\. To specify.*$/, ''), command);
  }
}

function wholeNumber(picked: Picked, min: number, max: number, command: string, unit = ''): number {
  if (!/^\d+$/.test(picked.value.trim()) || Number(picked.value) < min || Number(picked.value) > max) {
    throw new UsageError(
      `${picked.source} must be a whole number from ${min} to ${max}${unit}, not "${picked.value}"`,
      command,
    );
  }
  return Number(picked.value);
}

function required(picked: Picked | undefined, flag: string, envName: string, what: string, command: string): Picked {
  if (picked === undefined || picked.value.trim() === '') {
    throw new UsageError(`missing --${flag} (or ${envName}): ${what}`, command);
  }
  return { value: picked.value.trim(), source: picked.source };
}

function checkKey(picked: Picked, command: string): string {
  const key = picked.value.trim();
  try {
    decodeBase64Key(key, picked.source);
  } catch (err) {
    if (err instanceof KeyError) {
      throw new UsageError(
        `${err.message}: pass the key exactly as DPS shows it (base64, usually ending in =)`,
        command,
      );
    }
    throw err;
  }
  return key;
}

function connection(flags: Record<string, unknown>, env: Env, deps: ConfigDeps, command: string): ConnectionConfig {
  const host = pick(flags, 'provisioning-host', env, ENV.provisioningHost) ?? {
    value: DEFAULT_PROVISIONING_HOST,
    source: '--provisioning-host',
  };
  const endpoint = parseProvisioningHost(host.value, host.source);
  if (!endpoint.ok) throw new UsageError(endpoint.message, command);

  const idScope = required(
    pick(flags, 'id-scope', env, ENV.idScope),
    'id-scope',
    ENV.idScope,
    'the ID scope of the DPS instance, e.g. 0ne00000A0A (Azure portal: DPS overview; local emulator: printed when it starts)',
    command,
  );
  if (!/^[A-Za-z0-9]+$/.test(idScope.value)) {
    throw new UsageError(
      `${idScope.source} "${idScope.value}" is not an ID scope (letters and digits, e.g. 0ne00000A0A)`,
      command,
    );
  }

  const transportPicked = pick(flags, 'transport', env, ENV.transport);
  const transport = (transportPicked?.value.trim().toLowerCase() ?? 'mqtt') as TransportName;
  if (!TRANSPORTS.includes(transport)) {
    throw new UsageError(`${transportPicked?.source} must be mqtt or http, not "${transportPicked?.value}"`, command);
  }

  const config: ConnectionConfig = {
    provisioningHost: endpoint.value.hostWithPort,
    idScope: idScope.value,
    transport,
    timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
    json: flags.json === true,
  };

  const payload = pick(flags, 'payload', env, ENV.payload);
  if (payload) {
    const parsed = parsePayload(payload.value, payload.source);
    if (!parsed.ok) throw new UsageError(parsed.message, command);
    config.payload = parsed.value;
  }

  const caFile = pick(flags, 'ca', env, ENV.caFile);
  if (caFile) {
    let text: string;
    try {
      text = (deps.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(caFile.value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'does not exist'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? String(err)})`;
      throw new UsageError(`${caFile.source}: the CA file "${caFile.value}" ${why}`, command);
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      throw new UsageError(
        `${caFile.source}: "${caFile.value}" is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
        command,
      );
    }
    config.ca = text;
    config.caFile = caFile.value;
  }

  const polling = pick(flags, 'polling-interval', env, ENV.pollingInterval);
  if (polling) config.pollingIntervalMs = wholeNumber(polling, 1, 3_600_000, command, ' (milliseconds)');
  const timeout = pick(flags, 'timeout', env, ENV.timeout);
  if (timeout) config.timeoutMs = wholeNumber(timeout, 0, 86_400, command, ' (seconds; 0 = no limit)') * 1000;
  return config;
}

function registerConfig(args: string[], env: Env, deps: ConfigDeps): Command {
  const { values } = parse(args, REGISTER_OPTIONS, 'register', false);
  if (values.help === true) return { kind: 'help', topic: 'register' };
  const base = connection(values, env, deps, 'register');
  const registrationId = required(
    pick(values, 'registration-id', env, ENV.registrationId),
    'registration-id',
    ENV.registrationId,
    "the device's registration id, e.g. contoso-toaster-007",
    'register',
  );
  const idProblem = registrationIdProblem(registrationId.value);
  if (idProblem) throw new UsageError(`${registrationId.source}: ${idProblem}`, 'register');

  const config: RegisterConfig = { ...base, registrationId: registrationId.value };
  const deviceFlag = typeof values['device-key'] === 'string';
  const groupFlag = typeof values['group-key'] === 'string';
  if (deviceFlag && groupFlag) {
    throw new UsageError('give --device-key or --group-key, not both', 'register');
  }
  let device: Picked | undefined;
  let group: Picked | undefined;
  if (deviceFlag) device = pick(values, 'device-key', {}, '');
  else if (groupFlag) group = pick(values, 'group-key', {}, '');
  else {
    device = pick(values, 'device-key', env, ENV.deviceKey);
    group = pick(values, 'group-key', env, ENV.groupKey);
    if (device && group) {
      throw new UsageError(
        `both ${ENV.deviceKey} and ${ENV.groupKey} are set: unset one, or choose with --device-key or --group-key`,
        'register',
      );
    }
  }
  if (device) config.deviceKey = checkKey(device, 'register');
  else if (group) config.groupKey = checkKey(group, 'register');
  else {
    throw new UsageError(
      `a key is needed: --group-key <enrollment group key> (the device key is derived from it) or --device-key <device key>, or ${ENV.groupKey}/${ENV.deviceKey}. Azure: az iot dps enrollment-group show --show-keys`,
      'register',
    );
  }
  return { kind: 'register', config };
}

function fleetConfig(args: string[], env: Env, deps: ConfigDeps): Command {
  const { values } = parse(args, FLEET_OPTIONS, 'fleet', false);
  if (values.help === true) return { kind: 'help', topic: 'fleet' };
  const base = connection(values, env, deps, 'fleet');
  const group = required(
    pick(values, 'group-key', env, ENV.groupKey),
    'group-key',
    ENV.groupKey,
    "the enrollment group key: each device's key is derived from it",
    'fleet',
  );
  const count = wholeNumber(
    required(pick(values, 'count', {}, ''), 'count', 'no variable', 'how many devices to register', 'fleet'),
    1,
    MAX_FLEET_COUNT,
    'fleet',
  );
  const concurrencyPicked = pick(values, 'concurrency', {}, '');
  const concurrency = concurrencyPicked ? wholeNumber(concurrencyPicked, 1, 100_000, 'fleet') : DEFAULT_CONCURRENCY;
  const startPicked = pick(values, 'start', {}, '');
  const start = startPicked ? wholeNumber(startPicked, 0, 1_000_000_000_000, 'fleet') : 1;
  const flagTemplates = values['registration-id-template'];
  const templateSources = Array.isArray(flagTemplates)
    ? (flagTemplates as string[])
    : env[ENV.registrationIdTemplate]
      ? [env[ENV.registrationIdTemplate] as string]
      : [];
  if (templateSources.length === 0) {
    throw new UsageError(
      `missing --registration-id-template (or ${ENV.registrationIdTemplate}): e.g. contoso-toaster-{n} ({n} is the device number, {n:4} zero-pads it); repeat it or separate with commas to mix device types`,
      'fleet',
    );
  }
  let templates: string[];
  try {
    const parsed = parseTemplates(templateSources);
    const problem = fleetTemplatesProblem(parsed, count, start);
    if (problem) throw new InvalidOptionError('registrationIdTemplates', problem);
    templates = parsed.map((t) => t.source);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(err.message, 'fleet');
    throw err;
  }
  return {
    kind: 'fleet',
    config: {
      ...base,
      groupKey: checkKey(group, 'fleet'),
      count,
      concurrency,
      templates,
      start,
      progress: values['no-progress'] !== true,
    },
  };
}

function keysConfig(args: string[], env: Env): Command {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return { kind: 'help', topic: 'keys' };
  if (sub !== 'derive') throw new UsageError(`unknown keys command "${sub}"; the one there is: keys derive`, 'keys');
  const { values, positionals } = parse(rest, KEYS_OPTIONS, 'keys derive', true);
  if (values.help === true) return { kind: 'help', topic: 'keys derive' };
  const group = required(
    pick(values, 'group-key', env, ENV.groupKey),
    'group-key',
    ENV.groupKey,
    'the enrollment group key to derive device keys from',
    'keys derive',
  );
  for (const id of positionals) {
    const problem = registrationIdProblem(id);
    if (problem) throw new UsageError(problem, 'keys derive');
  }
  return {
    kind: 'keys-derive',
    config: { groupKey: checkKey(group, 'keys derive'), ids: positionals, json: values.json === true },
  };
}

/** Turns `argv` (without `node` and the script) and the environment into a command, or throws `UsageError`. */
export function parseCommandLine(argv: readonly string[], env: Env, deps: ConfigDeps = {}): Command {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      throw new UsageError('no command given', 'main');
    case '-h':
    case '--help':
      return { kind: 'help', topic: 'main' };
    case '-v':
    case '--version':
      return { kind: 'version' };
    case 'help': {
      const topic = rest.join(' ');
      if (topic === '') return { kind: 'help', topic: 'main' };
      if (topic === 'register' || topic === 'fleet' || topic === 'keys' || topic === 'keys derive') {
        return { kind: 'help', topic };
      }
      throw new UsageError(`no help for "${topic}"`, 'main');
    }
    case 'register':
      return registerConfig(rest, env, deps);
    case 'fleet':
      return fleetConfig(rest, env, deps);
    case 'keys':
      return keysConfig(rest, env);
    default:
      throw new UsageError(`unknown command "${command}"`, 'main');
  }
}
