import { availableParallelism } from 'node:os';
import { parseOptions, UsageError, unknownCommand } from '@dpskit/node-kit';
import { InvalidOptionError } from '../lib/errors.js';
import {
  checkIdScope,
  checkKey,
  checkRegistrationId,
  checkTransport,
  checkWholeNumber,
  DEFAULT_CONCURRENCY,
  MAX_CONCURRENCY,
  MAX_FLEET_COUNT,
  MAX_RETRIES,
  MAX_WORKERS,
} from '../lib/inputs.js';
import { parsePayload } from '../lib/payload.js';
import { MAX_METHOD_ANSWERS, type MethodAnswer, parseMethodAnswer } from '../lib/stay-options.js';
import { checkFleetTemplates, fleetDevice } from '../lib/template.js';
import { parseProvisioningHost } from '../lib/transport/endpoint.js';
import { DEFAULT_PROVISIONING_HOST, type TransportName } from '../lib/types.js';
import { type ReadTextFile, readCaFile } from './ca-file.js';
import { ID_PLACEHOLDER, readCertificateFiles } from './certificate-files.js';
import { parseKeysCommand } from './keys-args.js';
import { ENV, type Flags, forCommand, named, type Picked, pick, required } from './option-values.js';
import { readNamedFile, readUtf8 } from './text-file.js';

// The command line taken in: flags, their environment variables, and the CA file they name. Every
// value is checked here, where it enters, with the library's own checks (lib/inputs.ts) naming the
// flag or variable; what comes out is ready for the library. Loads neither the SDK nor the runners.

export { ENV, UsageError };

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
  /** Registrations started again after a transient failure (0 = none). */
  retries: number;
  json: boolean;
  /** `--connect` / `--telemetry N`: after assignment the device connects to its hub (`--hub-transport`). */
  connect?: { gatewayHost?: string; telemetryCount: number; transport: TransportName };
}

/** `register --stay`: the device stays on its hub until Ctrl-C or SIGTERM. */
export interface StayConfig {
  /** `--method name=status[:json]` answers by name (`*`: every other method). */
  methods: Record<string, MethodAnswer>;
  /** `--ack-desired`: acknowledge desired changes as IoT Plug and Play's writable properties. */
  acknowledgeDesired: boolean;
  /** `--interval <seconds>`: a telemetry message every interval. */
  telemetryIntervalMs?: number;
}

export interface RegisterConfig extends ConnectionConfig {
  registrationId: string;
  deviceKey?: string;
  groupKey?: string;
  /** X.509: the certificate (chain) and key read from `--cert`/`--key`. */
  certificate?: { cert: string; key: string };
  stay?: StayConfig;
}

export interface FleetConfig extends ConnectionConfig {
  /** Symmetric keys; absent with `certificates`. */
  groupKey?: string;
  /** X.509: file templates with `{id}`, e.g. `certs/{id}.pem` and `certs/{id}.key.pem`. */
  certificates?: { certTemplate: string; keyTemplate: string };
  count: number;
  concurrency: number;
  /** Worker threads the devices are spread over (default: the core count). */
  workers: number;
  templates: string[];
  start: number;
  /** Draw a progress bar (only on a terminal). */
  progress: boolean;
  /** `fleet --stay`: every device stays on its hub until Ctrl-C or SIGTERM. */
  stay?: StayConfig;
  /**
   * Several payloads (`--payload` repeated, or `--payload-file`): device index i sends
   * `payloads[i % payloads.length]`. Absent: every device sends `payload`.
   */
  payloads?: Record<string, unknown>[];
}

export interface CertsCreateConfig {
  /** Folder for the PEM files; an existing root (and intermediate) there is reused. */
  out: string;
  /** Registration ids: given, or from `--count`/`--registration-id-template`. */
  ids: string[];
  /** Issue device certificates from the root directly (no intermediate). */
  intermediate: boolean;
  organizationalUnit?: string;
  days: number;
  json: boolean;
}

export interface CertsThumbprintConfig {
  files: string[];
  json: boolean;
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
  | { kind: 'keys-derive'; config: KeysDeriveConfig }
  | { kind: 'certs-create'; config: CertsCreateConfig }
  | { kind: 'certs-thumbprint'; config: CertsThumbprintConfig };

export type HelpTopic = 'main' | 'register' | 'fleet' | 'keys' | 'keys derive' | 'certs';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigDeps {
  readFile?: ReadTextFile;
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
  retries: { type: 'string' },
  connect: { type: 'boolean' },
  telemetry: { type: 'string' },
  'hub-host': { type: 'string' },
  'hub-transport': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const STAY_OPTIONS = {
  stay: { type: 'boolean' },
  method: { type: 'string', multiple: true },
  'ack-desired': { type: 'boolean' },
  interval: { type: 'string' },
} as const;

const REGISTER_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...STAY_OPTIONS,
  'registration-id': { type: 'string' },
  'device-key': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

const FLEET_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...STAY_OPTIONS,
  payload: { type: 'string', multiple: true },
  'payload-file': { type: 'string' },
  count: { type: 'string' },
  concurrency: { type: 'string' },
  workers: { type: 'string' },
  'registration-id-template': { type: 'string', multiple: true },
  start: { type: 'string' },
  'no-progress': { type: 'boolean' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

const CERTS_CREATE_OPTIONS = {
  out: { type: 'string' },
  count: { type: 'string' },
  'registration-id-template': { type: 'string', multiple: true },
  start: { type: 'string' },
  'no-intermediate': { type: 'boolean' },
  ou: { type: 'string' },
  days: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CERTS_THUMBPRINT_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMANDS = ['register', 'fleet', 'keys', 'certs', 'help'];

function connection(flags: Flags, env: Env, deps: ConfigDeps): ConnectionConfig {
  const host = pick(flags, 'provisioning-host', env, ENV.provisioningHost) ?? {
    value: DEFAULT_PROVISIONING_HOST,
    source: '--provisioning-host',
  };
  const endpoint = parseProvisioningHost(host.value, host.source);
  if (!endpoint.ok) throw new InvalidOptionError('provisioningHost', endpoint.message);

  const idScope = required(
    pick(flags, 'id-scope', env, ENV.idScope),
    'id-scope',
    ENV.idScope,
    'the ID scope of the DPS instance, e.g. 0ne00000A0A (Azure portal: DPS overview; local emulator: printed when it starts)',
  );
  const transport = pick(flags, 'transport', env, ENV.transport);
  const config: ConnectionConfig = {
    provisioningHost: endpoint.value.hostWithPort,
    idScope: checkIdScope(named('idScope', idScope)),
    transport: transport
      ? checkTransport({ ...named('transport', transport), value: transport.value.trim().toLowerCase() })
      : 'mqtt',
    timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
    retries: 0,
    json: flags.json === true,
  };

  // fleet takes --payload repeated (an array here) or --payload-file: fleetPayloads reads them.
  const payload =
    Array.isArray(flags.payload) || typeof flags['payload-file'] === 'string'
      ? undefined
      : pick(flags, 'payload', env, ENV.payload);
  if (payload) {
    const parsed = parsePayload(payload.value, payload.source);
    if (!parsed.ok) throw new InvalidOptionError('payload', parsed.message);
    config.payload = parsed.value;
  }
  const caFile = pick(flags, 'ca', env, ENV.caFile);
  if (caFile) {
    config.ca = readCaFile(caFile.value, caFile.source, deps.readFile);
    config.caFile = caFile.value;
  }
  const polling = pick(flags, 'polling-interval', env, ENV.pollingInterval);
  if (polling) {
    config.pollingIntervalMs = checkWholeNumber(named('pollingIntervalMs', polling), 1, 3_600_000, ' (milliseconds)');
  }
  const timeout = pick(flags, 'timeout', env, ENV.timeout);
  if (timeout) {
    config.timeoutMs = checkWholeNumber(named('timeoutMs', timeout), 0, 86_400, ' (seconds; 0 = no limit)') * 1000;
  }
  const retries = pick(flags, 'retries', env, ENV.retries);
  if (retries) config.retries = checkWholeNumber(named('retries', retries), 0, MAX_RETRIES);
  const telemetry = pick(flags, 'telemetry', env);
  const hubHost = pick(flags, 'hub-host', env, ENV.hubHost);
  const hubTransportFlag = pick(flags, 'hub-transport', env, ENV.hubTransport);
  if (
    flags.connect === true ||
    flags.stay === true ||
    telemetry ||
    typeof flags['hub-host'] === 'string' ||
    typeof flags['hub-transport'] === 'string'
  ) {
    const telemetryCount = telemetry ? checkWholeNumber(named('telemetry', telemetry), 0, 10_000) : 0;
    const hubTransport = hubTransportFlag
      ? checkTransport({
          ...named('hubTransport', hubTransportFlag),
          value: hubTransportFlag.value.trim().toLowerCase(),
        })
      : 'mqtt';
    const gatewayHost = hubHost
      ? parseHubHost(hubHost)
      : defaultHubHost(endpoint.value, config.transport, hubTransport);
    config.connect = { telemetryCount, transport: hubTransport, ...(gatewayHost ? { gatewayHost } : {}) };
  }
  return config;
}

function parseHubHost(picked: Picked): string {
  const parsed = parseProvisioningHost(picked.value, picked.source);
  if (!parsed.ok)
    throw new InvalidOptionError(
      'hubHost',
      parsed.message.replace('e.g. global.azure-devices-provisioning.net or', 'e.g.'),
    );
  return parsed.value.hostWithPort;
}

/**
 * Where the device reaches its hub when `--hub-host` is not given: against real DPS, the assigned
 * hub itself; against a local emulator, the emulator, whose listeners serve the hubs too: the
 * provisioning host itself when DPS and the hub are reached on the same listener (MQTT's, AMQP's,
 * or HTTPS's, which carries HTTP and both WebSocket transports), else the port the hub transport's
 * listener has where the READMEs start the emulator (MQTT 8883, AMQP 5671: its defaults; HTTPS
 * 8443: its own default is 443, which needs privileges, so every README starts it on 8443).
 */
export function defaultHubHost(
  endpoint: { hostname: string; hostWithPort: string },
  transport: TransportName,
  hubTransport: TransportName = 'mqtt',
): string | undefined {
  if (/\.azure-devices-provisioning\.net\.?$/i.test(endpoint.hostname)) return undefined;
  if (EMULATOR_LISTENERS[transport] === EMULATOR_LISTENERS[hubTransport]) return endpoint.hostWithPort;
  const port = EMULATOR_README_PORTS[EMULATOR_LISTENERS[hubTransport]];
  return `${endpoint.hostname.includes(':') ? `[${endpoint.hostname}]` : endpoint.hostname}:${port}`;
}

/** Which of the emulator's listeners serves each transport (DPS's and the hubs' alike). */
const EMULATOR_LISTENERS: Readonly<Record<TransportName, 'mqtt' | 'amqp' | 'https'>> = {
  mqtt: 'mqtt',
  amqp: 'amqp',
  'mqtt-ws': 'https',
  'amqp-ws': 'https',
  http: 'https',
};
/** The emulator's ports as the READMEs start it (`--mqtt-port 8883 --amqp-port 5671 --https-port 8443`). */
const EMULATOR_README_PORTS = { mqtt: 8883, amqp: 5671, https: 8443 } as const;

function registerConfig(flags: Flags, env: Env, deps: ConfigDeps): Command {
  if (flags.help === true) return { kind: 'help', topic: 'register' };
  const base = connection(flags, env, deps);
  const registrationId = required(
    pick(flags, 'registration-id', env, ENV.registrationId),
    'registration-id',
    ENV.registrationId,
    "the device's registration id, e.g. contoso-toaster-007",
  );
  const config: RegisterConfig = {
    ...base,
    registrationId: checkRegistrationId(named('registrationId', registrationId)),
  };
  const stay = stayConfig(flags, base.connect?.transport);
  if (stay) config.stay = stay;
  const certificate = certificateFlags(flags);
  if (certificate) {
    if (typeof flags['device-key'] === 'string' || typeof flags['group-key'] === 'string') {
      throw new InvalidOptionError(
        'certificate',
        'give --cert/--key (X.509) or a key (--device-key, --group-key), not both',
      );
    }
    config.certificate = readCertificateFiles(certificate.cert, certificate.key, deps.readFile);
    return { kind: 'register', config };
  }
  const deviceFlag = typeof flags['device-key'] === 'string';
  const groupFlag = typeof flags['group-key'] === 'string';
  if (deviceFlag && groupFlag) throw new InvalidOptionError('deviceKey', 'give --device-key or --group-key, not both');
  // A key flag wins over both variables; with no flag, the variables must not contradict each other.
  const device = groupFlag ? undefined : pick(flags, 'device-key', deviceFlag ? {} : env, ENV.deviceKey);
  const group = deviceFlag ? undefined : pick(flags, 'group-key', groupFlag ? {} : env, ENV.groupKey);
  if (device && group) {
    throw new InvalidOptionError(
      'deviceKey',
      `both ${ENV.deviceKey} and ${ENV.groupKey} are set: unset one, or choose with --device-key or --group-key`,
    );
  }
  if (device) config.deviceKey = checkKey(named('deviceKey', { ...device, value: device.value.trim() }));
  else if (group) config.groupKey = checkKey(named('groupKey', { ...group, value: group.value.trim() }));
  else {
    throw new InvalidOptionError(
      'deviceKey',
      `a key is needed: --group-key <enrollment group key> (the device key is derived from it) or --device-key <device key>, or ${ENV.groupKey}/${ENV.deviceKey} (Azure: az iot dps enrollment-group show --show-keys); X.509 devices give --cert <file> --key <file>`,
    );
  }
  return { kind: 'register', config };
}

function fleetConfig(flags: Flags, env: Env, deps: ConfigDeps): Command {
  if (flags.help === true) return { kind: 'help', topic: 'fleet' };
  const base = connection(flags, env, deps);
  const certificate = certificateFlags(flags);
  if (certificate && typeof flags['group-key'] === 'string') {
    throw new InvalidOptionError('certificate', 'give --cert/--key (X.509) or --group-key, not both');
  }
  if (certificate) {
    for (const [flag, template] of [
      ['--cert', certificate.cert],
      ['--key', certificate.key],
    ] as const) {
      if (!template.includes(ID_PLACEHOLDER)) {
        throw new InvalidOptionError(
          'certificate',
          `${flag} "${template}" has no ${ID_PLACEHOLDER}: every device needs its own file, e.g. ${flag} certs/${ID_PLACEHOLDER}${flag === '--cert' ? '.pem' : '.key.pem'}`,
        );
      }
    }
  }
  const group = certificate
    ? undefined
    : required(
        pick(flags, 'group-key', env, ENV.groupKey),
        'group-key',
        ENV.groupKey,
        "the enrollment group key: each device's key is derived from it (X.509 devices: --cert and --key templates instead)",
      );
  const count = checkWholeNumber(
    named('count', required(pick(flags, 'count', env), 'count', undefined, 'how many devices to register')),
    1,
    MAX_FLEET_COUNT,
  );
  const stay = stayConfig(flags, base.connect?.transport);
  if (stay && count > MAX_STAYING_DEVICES) {
    throw new InvalidOptionError(
      'count',
      `--stay keeps every device connected: at most ${MAX_STAYING_DEVICES} devices (--count ${count})`,
    );
  }
  const concurrencyPicked = pick(flags, 'concurrency', env);
  let concurrency = concurrencyPicked
    ? checkWholeNumber(named('concurrency', concurrencyPicked), 1, MAX_CONCURRENCY)
    : DEFAULT_CONCURRENCY;
  if (stay) {
    // A staying device keeps its slot until the end: fewer slots than devices would leave the rest unstarted.
    if (concurrencyPicked && concurrency < count) {
      throw new InvalidOptionError(
        'concurrency',
        `--stay keeps every device connected, each holding its slot: --concurrency must be at least --count (${count}), not ${concurrency}`,
      );
    }
    concurrency = count;
  }
  const workersPicked = pick(flags, 'workers', env);
  if (stay && workersPicked) {
    throw new InvalidOptionError(
      'workers',
      '--stay runs the devices in one thread (their events are printed here): leave out --workers',
    );
  }
  const workers = stay
    ? 1
    : workersPicked
      ? checkWholeNumber(named('workers', workersPicked), 1, MAX_WORKERS)
      : defaultWorkers();
  const startPicked = pick(flags, 'start', env);
  const start = startPicked ? checkWholeNumber(named('start', startPicked), 0, 1_000_000_000_000) : 1;
  const flagTemplates = flags['registration-id-template'];
  const envTemplate = env[ENV.registrationIdTemplate];
  const templateSources = Array.isArray(flagTemplates) ? flagTemplates.map(String) : envTemplate ? [envTemplate] : [];
  if (templateSources.length === 0) {
    throw new InvalidOptionError(
      'registrationIdTemplates',
      `missing --registration-id-template (or ${ENV.registrationIdTemplate}): e.g. contoso-toaster-{n} ({n} is the device number, {n:4} zero-pads it); repeat it or separate with commas to mix device types`,
    );
  }
  const templates = checkFleetTemplates({ field: 'registrationIdTemplates', value: templateSources }, count, start);
  const payloads = fleetPayloads(flags, deps);
  if (payloads?.length === 1) base.payload = payloads[0];
  return {
    kind: 'fleet',
    config: {
      ...base,
      ...(payloads && payloads.length > 1 ? { payloads } : {}),
      ...(stay ? { stay } : {}),
      ...(group ? { groupKey: checkKey(named('groupKey', group)) } : {}),
      ...(certificate ? { certificates: { certTemplate: certificate.cert, keyTemplate: certificate.key } } : {}),
      count,
      concurrency,
      workers,
      templates: templates.map((t) => t.source),
      start,
      // A staying fleet prints a line per event: no progress bar between them.
      progress: flags['no-progress'] !== true && !stay,
    },
  };
}

/** `fleet --stay`: at most this many devices stay connected (each an MQTT connection to the hub). */
export const MAX_STAYING_DEVICES = 1000;

/** The longest `--interval`: a day. */
const MAX_INTERVAL_SECONDS = 86_400;

/** `register --stay` and the flags only a staying device takes (each refused without it, named). */
function stayConfig(flags: Flags, hubTransport: TransportName | undefined): StayConfig | undefined {
  const methodFlags = Array.isArray(flags.method) ? flags.method.map(String) : [];
  if (flags.stay !== true) {
    const given = [
      methodFlags.length > 0 ? '--method' : undefined,
      flags['ack-desired'] === true ? '--ack-desired' : undefined,
      typeof flags.interval === 'string' ? '--interval' : undefined,
    ].find((f) => f !== undefined);
    if (given) {
      throw new InvalidOptionError(
        'stay',
        `${given} needs --stay: only a device that stays on its hub answers methods, takes desired properties or sends telemetry on an interval (--telemetry <n> sends n and leaves)`,
      );
    }
    return undefined;
  }
  // IoT Hub's HTTPS device API has no direct methods and no desired-property pushes.
  const withoutHttp = [
    methodFlags.length > 0 ? '--method' : undefined,
    flags['ack-desired'] === true ? '--ack-desired' : undefined,
  ].find((f) => f !== undefined);
  if (hubTransport === 'http' && withoutHttp) {
    throw new InvalidOptionError(
      'hubTransport',
      `${withoutHttp} needs a hub transport that receives direct methods and desired properties: --hub-transport http (IoT Hub's HTTPS device API) has neither; use mqtt, mqtt-ws, amqp or amqp-ws`,
    );
  }
  const methods: Record<string, MethodAnswer> = {};
  if (methodFlags.length > MAX_METHOD_ANSWERS) {
    throw new InvalidOptionError(
      'methods',
      `--method given ${methodFlags.length} times: at most ${MAX_METHOD_ANSWERS}`,
    );
  }
  for (const text of methodFlags) {
    const { name, answer } = parseMethodAnswer(text, '--method');
    if (Object.hasOwn(methods, name)) {
      throw new InvalidOptionError('methods', `--method "${name}" is given twice: one answer per method`);
    }
    methods[name] = answer;
  }
  const config: StayConfig = { methods, acknowledgeDesired: flags['ack-desired'] === true };
  const interval = pick(flags, 'interval', {});
  if (interval) {
    config.telemetryIntervalMs =
      checkWholeNumber(named('telemetryIntervalMs', interval), 1, MAX_INTERVAL_SECONDS, ' (seconds)') * 1000;
  }
  return config;
}

/** At most this many payloads in a `--payload-file` (a fleet's devices take them in turns). */
export const MAX_PAYLOADS = 100_000;

/**
 * `fleet`'s payloads: `--payload` repeated, or `--payload-file` (JSON lines, one payload object a
 * line, blank lines skipped), or else `DPS_PAYLOAD`. Device index i sends payload i % k, so a list
 * as long as the templates gives each template's devices their own; a file as long as the fleet
 * gives every device its own.
 */
function fleetPayloads(flags: Flags, deps: ConfigDeps): Record<string, unknown>[] | undefined {
  const given = Array.isArray(flags.payload) ? flags.payload.map(String) : [];
  const file = typeof flags['payload-file'] === 'string' ? flags['payload-file'].trim() : undefined;
  if (file !== undefined && given.length > 0) {
    throw new InvalidOptionError('payload', 'give --payload (one or more) or --payload-file, not both');
  }
  if (file !== undefined) {
    if (file === '') throw new InvalidOptionError('payloadFile', '--payload-file needs a file name');
    const text = readNamedFile(
      file,
      deps.readFile ?? readUtf8,
      'payloadFile',
      (why) => `--payload-file "${file}" ${why}`,
    );
    const payloads: Record<string, unknown>[] = [];
    const lines = text.split(/\r?\n/);
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      const parsed = parsePayload(line, `--payload-file "${file}" line ${i + 1}`);
      if (!parsed.ok) throw new InvalidOptionError('payloadFile', parsed.message);
      if (payloads.length === MAX_PAYLOADS) {
        throw new InvalidOptionError('payloadFile', `--payload-file "${file}" has more than ${MAX_PAYLOADS} payloads`);
      }
      payloads.push(parsed.value);
    }
    if (payloads.length === 0) {
      throw new InvalidOptionError('payloadFile', `--payload-file "${file}" holds no payload (one JSON object a line)`);
    }
    return payloads;
  }
  if (given.length === 0) return undefined;
  return given.map((text, i) => {
    const parsed = parsePayload(text, given.length > 1 ? `--payload (the ${ordinal(i + 1)})` : '--payload');
    if (!parsed.ok) throw new InvalidOptionError('payload', parsed.message);
    return parsed.value;
  });
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/**
 * One worker thread per core the process may use but one, which is left to the emulator (one
 * process by default) that a fleet usually runs against on the same machine. On 2 cores, against a
 * local emulator, one thread used 14-31% less client CPU per registration than two and was faster in
 * 13 of 14 paired fleets (README: Workers).
 */
function defaultWorkers(): number {
  return Math.max(1, Math.min(MAX_WORKERS, availableParallelism() - 1));
}

/** `--cert` and `--key`, both or neither. */
function certificateFlags(flags: Flags): { cert: string; key: string } | undefined {
  const cert = typeof flags.cert === 'string' ? flags.cert.trim() : undefined;
  const key = typeof flags.key === 'string' ? flags.key.trim() : undefined;
  if (cert === undefined && key === undefined) return undefined;
  if (!cert) throw new InvalidOptionError('certificate', '--key needs --cert <file> (the device certificate, PEM)');
  if (!key) throw new InvalidOptionError('certificate', '--cert needs --key <file> (its private key, PEM)');
  return { cert, key };
}

function certsCreateConfig(flags: Flags, positionals: string[]): Command {
  if (flags.help === true) return { kind: 'help', topic: 'certs' };
  const out = typeof flags.out === 'string' && flags.out.trim() !== '' ? flags.out.trim() : undefined;
  if (!out) throw new InvalidOptionError('out', 'missing --out <folder>: where the PEM files go (created if needed)');
  let ids = positionals.map((id) => checkRegistrationId({ field: 'registrationId', value: id }));
  const templates = Array.isArray(flags['registration-id-template'])
    ? flags['registration-id-template'].map(String)
    : [];
  if (templates.length > 0 || typeof flags.count === 'string') {
    if (ids.length > 0)
      throw new InvalidOptionError('ids', 'give registration ids or --count with --registration-id-template, not both');
    const count = checkWholeNumber(
      named('count', required(pick(flags, 'count', {}), 'count', undefined, 'how many device certificates')),
      1,
      MAX_FLEET_COUNT,
    );
    if (templates.length === 0) {
      throw new InvalidOptionError(
        'registrationIdTemplates',
        'missing --registration-id-template, e.g. contoso-toaster-{n}',
      );
    }
    const startPicked = pick(flags, 'start', {});
    const start = startPicked ? checkWholeNumber(named('start', startPicked), 0, 1_000_000_000_000) : 1;
    const parsed = checkFleetTemplates({ field: 'registrationIdTemplates', value: templates }, count, start);
    ids = Array.from({ length: count }, (_, index) => fleetDevice(parsed, index, start).registrationId);
  }
  const daysPicked = pick(flags, 'days', {});
  const config: CertsCreateConfig = {
    out,
    ids,
    intermediate: flags['no-intermediate'] !== true,
    days: daysPicked ? checkWholeNumber(named('days', daysPicked), 1, 36_500) : 365,
    json: flags.json === true,
  };
  if (typeof flags.ou === 'string' && flags.ou.trim() !== '') config.organizationalUnit = flags.ou.trim();
  return { kind: 'certs-create', config };
}

function certsThumbprintConfig(flags: Flags, positionals: string[]): Command {
  if (flags.help === true) return { kind: 'help', topic: 'certs' };
  if (positionals.length === 0) throw new InvalidOptionError('files', 'give one or more PEM certificate files');
  return { kind: 'certs-thumbprint', config: { files: positionals, json: flags.json === true } };
}

/** Turns `argv` (without `node` and the script) and the environment into a command, or throws `UsageError`. */
export function parseCommandLine(argv: readonly string[], env: Env, deps: ConfigDeps = {}): Command {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      throw new UsageError('no command given');
    case '-h':
    case '--help':
      return { kind: 'help', topic: 'main' };
    case '-v':
    case '--version':
      return { kind: 'version' };
    case 'help': {
      const topic = rest.join(' ');
      if (topic === '') return { kind: 'help', topic: 'main' };
      if (
        topic === 'register' ||
        topic === 'fleet' ||
        topic === 'keys' ||
        topic === 'keys derive' ||
        topic === 'certs'
      ) {
        return { kind: 'help', topic };
      }
      throw new UsageError(`no help for "${topic}"`);
    }
    case 'register': {
      const { values } = parseOptions(rest, { options: REGISTER_OPTIONS, command });
      return forCommand(command, () => registerConfig(values, env, deps));
    }
    case 'fleet': {
      const { values } = parseOptions(rest, { options: FLEET_OPTIONS, command });
      return forCommand(command, () => fleetConfig(values, env, deps));
    }
    case 'keys':
      return parseKeysCommand(rest, env);
    case 'certs': {
      const [sub, ...args] = rest;
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help')
        return { kind: 'help', topic: 'certs' };
      if (sub === 'create') {
        const { values, positionals } = parseOptions(args, {
          options: CERTS_CREATE_OPTIONS,
          command: 'certs create',
          allowPositionals: true,
        });
        return forCommand('certs create', () => certsCreateConfig(values, positionals));
      }
      if (sub === 'thumbprint') {
        const { values, positionals } = parseOptions(args, {
          options: CERTS_THUMBPRINT_OPTIONS,
          command: 'certs thumbprint',
          allowPositionals: true,
        });
        return forCommand('certs thumbprint', () => certsThumbprintConfig(values, positionals));
      }
      throw unknownCommand(sub, ['create', 'thumbprint'], { label: 'certs command', command: 'certs' });
    }
    default:
      throw unknownCommand(command, COMMANDS);
  }
}
