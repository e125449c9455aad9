import { LOG_LEVELS, type LogLevel, oneOf, parseOptions, UsageError, unknownCommand } from '@dpskit/node-kit';
import { attemptHistoryProblem } from '../core/attempts.js';
import { MAX_RETRY_AFTER_SECONDS } from '../core/device-api.js';
import { type EnrollmentsArgs, parseEnrollmentsArgs } from './enrollments.js';
import { parseRegistrationsArgs, type RegistrationsArgs } from './registrations.js';

export { UsageError };

export const USAGE = `Usage: dps-emulator start [options]
       dps-emulator registrations list|show <id>|delete <id> [--state-dir dir] [--json]
       dps-emulator enrollments list|show <id>|delete <id> [--kind group|individual] [--state-dir dir] [--json]

A local Azure IoT Hub Device Provisioning Service for the official device SDKs.

Options:
  --config <file>          JSON or YAML config (default: the tutorial setup, see the README)
  --state-dir <dir>        registration records, generated keys, TLS files (default ./.dpskit/emulator)
  --host <address>         bind address (default 127.0.0.1)
  --mqtt-port <port>       MQTT over TLS port (default 8883; 0 = any free port)
  --https-port <port>      HTTPS port (default 443; 0 = any free port)
  --no-https               no HTTPS listener (and so no WebSockets)
  --amqp-port <port>       AMQP 1.0 over TLS port (default 5671; 0 = any free port)
  --no-amqp                no AMQP listener (and no AMQP over WebSockets)
  --web-port <port>        the read-only web view's HTTP port (default 8090, or a free one when taken;
                           0 = any free port)
  --web-host <address>     the web view's bind address (default 127.0.0.1)
  --no-web                 no web view
  --attempt-history <n>    registration attempts kept for the web view, oldest dropped first
                           (default 10000, or the config's attemptHistory; 0-1000000, 0 = none)
  --tls-name <name>        extra DNS name or IP for the server certificate (repeatable)
  --issuing-ca <file>      certificate issuance (register bodies with csr, api-version 2025-07-01-preview+):
                           the issuing CA certificate, PEM (its issuers up to the root may follow)
  --issuing-ca-key <file>  that CA's private key, PEM (required with --issuing-ca)
  --issued-cert-days <n>   validity of issued certificates, 1-3650 days (default 30)
  --retry-after <seconds>  retry-after sent while assigning: whole seconds 0-300 (default 3, as DPS;
                           0 = devices poll at once and are answered when allocation is done)
  --webhook-url <url>      without --config: make the tutorial group use custom allocation with this webhook
  --webhook-timeout <ms>   custom allocation webhook timeout (default 30000)
  --webhook-retries <n>    retries of a webhook answering 429 or 5xx (default 10, as DPS; 0 = none)
  --webhook-retry-interval <ms>   wait before the first retry (default 1000, as DPS)
  --webhook-retry-increment <ms>  added to the wait for each further retry (default 9000, as DPS:
                           1 s, 10 s, 19 s … 82 s, 415 s in all before the device gets its 400207)
  --idle-timeout <ms>      close a device connection silent this long (default 60000)
  --handshake-timeout <ms> close a connection whose TLS handshake takes longer (default 10000)
  --max-connections <n>    open connections per listener; more are refused (default 10000)
  --max-individual-enrollments <n>  individual enrollments the service API creates at most; one
                           more gets 403 (default 1000000, DPS's quota; the config file's count)
  --max-enrollment-groups <n>  enrollment groups per attestation type the service API creates at
                           most; one more gets 403 (default 100, DPS's quota)
  --log-format <format>    pretty or json (default: pretty on a terminal, json otherwise)
  --log-level <level>      debug, info, warn or error (default info)
  --workers <n>            serve the device API from n processes (node:cluster) sharing the listeners
                           and the state folder's store, so a poll may land on any of them (default 1;
                           1-64; the web view runs in the first; see the README's "Serving across cores")
  --ready-file <file>      once every listener is bound, write the endpoints (ports, provisioningHost,
                           CA path) there as JSON; removed on stop. For scripts: wait for the file
  -h, --help               show this help
  -v, --version            show the version
`;

export interface StartArgs {
  command: 'start';
  config?: string;
  stateDir?: string;
  host?: string;
  mqttPort?: number;
  httpsPort?: number | false;
  amqpPort?: number | false;
  tlsNames: string[];
  webView?: { port?: number; host?: string } | false;
  attemptHistory?: number;
  retryAfterSeconds?: number;
  webhookUrl?: string;
  webhookTimeoutMs?: number;
  webhookRetry?: { count?: number; initialIntervalMs?: number; incrementMs?: number };
  limits?: {
    idleTimeoutMs?: number;
    handshakeTimeoutMs?: number;
    maxConnections?: number;
    maxIndividualEnrollments?: number;
    maxEnrollmentGroups?: number;
  };
  logFormat?: 'pretty' | 'json';
  logLevel?: LogLevel;
  readyFile?: string;
  issuingCa?: { certFile: string; keyFile: string; days?: number };
  /** Processes serving the listeners (default 1: this one alone). */
  workers?: number;
}

export type CliArgs = StartArgs | RegistrationsArgs | EnrollmentsArgs | { command: 'help' } | { command: 'version' };

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'state-dir': { type: 'string' },
  host: { type: 'string' },
  'mqtt-port': { type: 'string' },
  'https-port': { type: 'string' },
  'no-https': { type: 'boolean' },
  'amqp-port': { type: 'string' },
  'no-amqp': { type: 'boolean' },
  'tls-name': { type: 'string', multiple: true },
  'web-port': { type: 'string' },
  'web-host': { type: 'string' },
  'no-web': { type: 'boolean' },
  'attempt-history': { type: 'string' },
  'retry-after': { type: 'string' },
  'webhook-url': { type: 'string' },
  'webhook-timeout': { type: 'string' },
  'webhook-retries': { type: 'string' },
  'webhook-retry-interval': { type: 'string' },
  'webhook-retry-increment': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-individual-enrollments': { type: 'string' },
  'max-enrollment-groups': { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  'ready-file': { type: 'string' },
  'issuing-ca': { type: 'string' },
  'issuing-ca-key': { type: 'string' },
  'issued-cert-days': { type: 'string' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Processes beyond the cores only contend for them; 64 bounds a typo. */
export const MAX_WORKERS = 64;

const COMMANDS = ['start', 'registrations', 'enrollments'] as const;

/** Turns the command line into what to do; throws `UsageError` (from `@dpskit/node-kit`) for what cannot run. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  if (argv[0] === 'registrations') return parseRegistrationsArgs(argv.slice(1));
  if (argv[0] === 'enrollments') return parseEnrollmentsArgs(argv.slice(1));
  const { values, positionals } = parseOptions(argv, { options: OPTIONS, allowPositionals: true, command: 'start' });
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('Missing the command: dps-emulator start');
  if (command !== 'start') throw unknownCommand(command, COMMANDS);
  const usage = (message: string) => new UsageError(message, { command: 'start' });
  if (rest.length > 0) throw usage(`Unexpected argument "${rest[0]}".`);
  if (values['no-https'] && values['https-port'] !== undefined)
    throw usage('--no-https and --https-port exclude each other.');
  if (values['no-amqp'] && values['amqp-port'] !== undefined)
    throw usage('--no-amqp and --amqp-port exclude each other.');
  if (values['no-web'] && (values['web-port'] !== undefined || values['web-host'] !== undefined))
    throw usage('--no-web and --web-port/--web-host exclude each other.');
  if (values.config && values['webhook-url']) {
    throw usage('--webhook-url only changes the built-in tutorial setup; with --config, set the webhook in the file.');
  }

  const args: StartArgs = { command: 'start', tlsNames: values['tls-name'] ?? [] };
  if (values.config !== undefined) args.config = values.config;
  if (values['state-dir'] !== undefined) args.stateDir = values['state-dir'];
  if (values.host !== undefined) args.host = values.host;
  if (values['mqtt-port'] !== undefined) args.mqttPort = port('--mqtt-port', values['mqtt-port']);
  if (values['https-port'] !== undefined) args.httpsPort = port('--https-port', values['https-port']);
  if (values['no-https']) args.httpsPort = false;
  if (values['amqp-port'] !== undefined) args.amqpPort = port('--amqp-port', values['amqp-port']);
  if (values['no-amqp']) args.amqpPort = false;
  if (values['no-web']) args.webView = false;
  else if (values['web-port'] !== undefined || values['web-host'] !== undefined) {
    const webView: { port?: number; host?: string } = {};
    if (values['web-port'] !== undefined) webView.port = port('--web-port', values['web-port']);
    if (values['web-host'] !== undefined) {
      if (values['web-host'].trim() === '') throw usage('--web-host needs an address.');
      webView.host = values['web-host'];
    }
    args.webView = webView;
  }
  if (values['attempt-history'] !== undefined) args.attemptHistory = attemptHistory(values['attempt-history']);
  if ((values['issuing-ca'] === undefined) !== (values['issuing-ca-key'] === undefined)) {
    throw usage('--issuing-ca and --issuing-ca-key go together (the CA certificate and its private key).');
  }
  if (values['issued-cert-days'] !== undefined && values['issuing-ca'] === undefined) {
    throw usage('--issued-cert-days needs --issuing-ca and --issuing-ca-key.');
  }
  if (values['issuing-ca'] !== undefined && values['issuing-ca-key'] !== undefined) {
    args.issuingCa = { certFile: values['issuing-ca'], keyFile: values['issuing-ca-key'] };
    if (values['issued-cert-days'] !== undefined) {
      const days = values['issued-cert-days'];
      if (!/^\d{1,4}$/.test(days) || Number(days) < 1 || Number(days) > 3650) {
        throw usage(`--issued-cert-days must be a whole number of days from 1 to 3650, not "${days}".`);
      }
      args.issuingCa.days = Number(days);
    }
  }
  if (values['retry-after'] !== undefined) args.retryAfterSeconds = retryAfterSeconds(values['retry-after']);
  if (values['webhook-url'] !== undefined) {
    try {
      const { protocol } = new URL(values['webhook-url']);
      if (protocol !== 'http:' && protocol !== 'https:') throw new Error();
    } catch {
      throw usage(`--webhook-url "${values['webhook-url']}" is not an http or https URL.`);
    }
    args.webhookUrl = values['webhook-url'];
  }
  if (values['webhook-timeout'] !== undefined)
    args.webhookTimeoutMs = number('--webhook-timeout', values['webhook-timeout'], 1);
  const retry: NonNullable<StartArgs['webhookRetry']> = {};
  if (values['webhook-retries'] !== undefined)
    retry.count = wholeNumber('--webhook-retries', values['webhook-retries']);
  if (values['webhook-retry-interval'] !== undefined)
    retry.initialIntervalMs = wholeNumber('--webhook-retry-interval', values['webhook-retry-interval']);
  if (values['webhook-retry-increment'] !== undefined)
    retry.incrementMs = wholeNumber('--webhook-retry-increment', values['webhook-retry-increment']);
  if (Object.keys(retry).length > 0) args.webhookRetry = retry;
  const limits: NonNullable<StartArgs['limits']> = {};
  for (const [flag, key] of [
    ['idle-timeout', 'idleTimeoutMs'],
    ['handshake-timeout', 'handshakeTimeoutMs'],
    ['max-connections', 'maxConnections'],
    ['max-individual-enrollments', 'maxIndividualEnrollments'],
    ['max-enrollment-groups', 'maxEnrollmentGroups'],
  ] as const) {
    const value = values[flag];
    if (value === undefined) continue;
    limits[key] = wholeNumber(`--${flag}`, value);
    if (limits[key] === 0) throw new UsageError(`--${flag} must be at least 1.`, { command: 'start' });
  }
  if (Object.keys(limits).length > 0) args.limits = limits;
  if (values['ready-file'] !== undefined) {
    if (values['ready-file'].trim() === '') throw usage('--ready-file needs a file path.');
    args.readyFile = values['ready-file'];
  }
  if (values.workers !== undefined) {
    if (!/^\d{1,2}$/.test(values.workers) || Number(values.workers) < 1 || Number(values.workers) > MAX_WORKERS)
      throw usage(`--workers must be a whole number from 1 to ${MAX_WORKERS}, not "${values.workers}".`);
    args.workers = Number(values.workers);
  }
  if (values['log-format'] !== undefined) {
    args.logFormat = oneOf('--log-format', values['log-format'], ['pretty', 'json'], { command: 'start' });
  }
  if (values['log-level'] !== undefined) {
    args.logLevel = oneOf('--log-level', values['log-level'], LOG_LEVELS, { command: 'start' });
  }
  return args;
}

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new UsageError(`${flag} must be a port number from 0 to 65535, not "${value}".`, { command: 'start' });
  return n;
}

function number(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min)
    throw new UsageError(`${flag} must be a number >= ${min}, not "${value}".`, { command: 'start' });
  return n;
}

/** Whole seconds only: the Python SDK (`int(x, 10)`) and the C SDK (`az_span_atou32`) reject fractions. */
function retryAfterSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d{1,3}$/.test(value) || n > MAX_RETRY_AFTER_SECONDS) {
    const hint = /^\d*\.\d+$/.test(value)
      ? ' (the Python and C SDKs cannot parse fractions; use 0 for devices to poll at once)'
      : '';
    throw new UsageError(
      `--retry-after must be a whole number of seconds from 0 to ${MAX_RETRY_AFTER_SECONDS}, not "${value}"${hint}.`,
      { command: 'start' },
    );
  }
  return n;
}

function attemptHistory(value: string): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : value;
  const problem = attemptHistoryProblem('--attempt-history', n);
  if (problem) throw new UsageError(`${problem}.`, { command: 'start' });
  return n as number;
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d{1,9}$/.test(value))
    throw new UsageError(`${flag} must be a whole number >= 0, not "${value}".`, { command: 'start' });
  return Number(value);
}
