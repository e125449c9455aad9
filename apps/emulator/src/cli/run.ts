import { readFileSync } from 'node:fs';
import {
  jsonLineSink,
  PortError,
  parseCommandLine,
  prettySink,
  removeReadyFile,
  writeReadyFile,
} from '@dpskit/node-kit';
import { tutorialConfig } from '../config/defaults.js';
import { ConfigError } from '../config/load.js';
import { IssuingCaError } from '../core/issuing-ca.js';
import { createEmulator, type Emulator, type EmulatorOptions } from '../emulator.js';
import { consumerGroupsOf } from '../hub/core/eventhub.js';
import { StateDirInUseError } from '../state-claim.js';
import { parseCliArgs, USAGE } from './args.js';
import { formatBanner } from './banner.js';
import { runEnrollments } from './enrollments.js';
import { runRegistrations } from './registrations.js';
import { leavePrimary, reportReady, runPrimary, untilPrimaryStops, workerNumber, workerSink } from './workers.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  /** Resolves when the emulator should stop (default: SIGINT or SIGTERM). */
  untilShutdown?: (emulator: Emulator) => Promise<void>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export { EXIT_USAGE } from '@dpskit/node-kit';

/** Runs the command line; resolves with the exit code once the emulator has stopped (or failed to start). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandLine('dps-emulator', io.stderr, () => parseCliArgs(argv));
  if (!parsed.ok) return parsed.exitCode;
  const args = parsed.value;
  if (args.command === 'help') {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (args.command === 'registrations') return runRegistrations(args, io);
  if (args.command === 'enrollments') return runEnrollments(args, io);
  if (args.command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.stdout.write(`${pkg.version}\n`);
    return EXIT_OK;
  }

  const json = args.logFormat ? args.logFormat === 'json' : !io.stdout.isTTY;
  // With JSON logs, stdout carries only JSON lines; the human summary goes to stderr.
  const bannerStream = json ? io.stderr : io.stdout;
  if (args.workers !== undefined && args.workers > 1 && workerNumber() === undefined) {
    return runPrimary({ ...args, workers: args.workers }, argv, io, bannerStream);
  }
  // In a worker of --workers: the primary prints the banner and writes the ready file.
  const worker = workerNumber();
  const sink = json ? jsonLineSink(io.stdout) : prettySink(io.stdout);
  const options: EmulatorOptions = {
    log: worker === undefined ? sink : workerSink(sink, worker),
    logLevel: args.logLevel ?? 'info',
    tlsNames: args.tlsNames,
  };
  if (args.config) options.configFile = args.config;
  else options.config = tutorialConfig(args.webhookUrl ? { webhookUrl: args.webhookUrl } : {});
  if (args.stateDir) options.stateDir = args.stateDir;
  if (args.host) options.host = args.host;
  if (args.mqttPort !== undefined) options.mqttPort = args.mqttPort;
  if (args.httpsPort !== undefined) options.httpsPort = args.httpsPort;
  if (args.amqpPort !== undefined) options.amqpPort = args.amqpPort;
  if (args.webView !== undefined) options.webView = args.webView;
  if (args.attemptHistory !== undefined) options.attemptHistory = args.attemptHistory;
  if (args.retryAfterSeconds !== undefined) options.retryAfterSeconds = args.retryAfterSeconds;
  if (args.limits) options.limits = args.limits;
  // Every worker serves the same store: pushes to another worker's devices go through it.
  if (worker !== undefined) options.sharedStore = true;
  if (worker !== undefined && worker > 1) {
    // The first worker resumes a previous run's operations and runs the web view (it reads the store).
    options.resumeUnfinished = false;
    options.webView = false;
  }
  if (args.webhookTimeoutMs !== undefined || args.webhookRetry) {
    options.webhook = {
      ...(args.webhookTimeoutMs !== undefined ? { timeoutMs: args.webhookTimeoutMs } : {}),
      ...(args.webhookRetry ? { retry: args.webhookRetry } : {}),
    };
  }

  if (args.issuingCa) {
    const files: { cert?: string; key?: string } = {};
    for (const [name, flag, file] of [
      ['cert', '--issuing-ca', args.issuingCa.certFile],
      ['key', '--issuing-ca-key', args.issuingCa.keyFile],
    ] as const) {
      try {
        files[name] = readFileSync(file, 'utf8');
      } catch (err) {
        io.stderr.write(
          `dps-emulator: ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
        );
        return EXIT_FAILURE;
      }
    }
    options.issuingCa = {
      cert: files.cert ?? '',
      key: files.key ?? '',
      ...(args.issuingCa.days !== undefined ? { days: args.issuingCa.days } : {}),
    };
  }

  const emulator = createEmulator(options);
  if (worker !== undefined) return runWorker(emulator, io);
  try {
    // A file left by an earlier run must not announce this one.
    if (args.readyFile) await removeReadyFile(args.readyFile);
    await emulator.start();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PortError || err instanceof StateDirInUseError) {
      io.stderr.write(`dps-emulator: ${err.message}\n`);
    } else if (err instanceof IssuingCaError) {
      io.stderr.write(
        `dps-emulator: issuing CA (--issuing-ca/--issuing-ca-key or the config's issuingCa): ${err.message}\n`,
      );
    } else {
      io.stderr.write(`dps-emulator: could not start: ${(err as Error).stack ?? String(err)}\n`);
    }
    return EXIT_FAILURE;
  }

  bannerStream.write(formatBanner(emulator));
  if (args.readyFile) {
    try {
      await writeReadyFile(args.readyFile, readyDetails(emulator));
    } catch (err) {
      io.stderr.write(`dps-emulator: could not write --ready-file: ${(err as Error).message}\n`);
      await emulator.stop();
      return EXIT_FAILURE;
    }
  }
  await (io.untilShutdown ?? untilSignal)(emulator);
  if (args.readyFile) await removeReadyFile(args.readyFile);
  await emulator.stop();
  return EXIT_OK;
}

/** One worker of `--workers`: starts, tells the primary, serves until the primary stops it. */
async function runWorker(emulator: Emulator, io: CliIo): Promise<number> {
  try {
    await emulator.start();
  } catch (err) {
    const message = err instanceof ConfigError || err instanceof PortError ? err.message : (err as Error).stack;
    io.stderr.write(`dps-emulator: could not start: ${message ?? String(err)}\n`);
    leavePrimary();
    return EXIT_FAILURE;
  }
  reportReady(formatBanner(emulator), readyDetails(emulator));
  await untilPrimaryStops();
  await emulator.stop();
  leavePrimary();
  return EXIT_OK;
}

/** What `--ready-file` holds besides `ready` and `pid`: what a script needs to point devices here. */
export function readyDetails(emulator: Emulator): Record<string, unknown> {
  const { mqtt, https, amqp, webSockets } = emulator.endpoints;
  return {
    idScope: emulator.idScope,
    mqtt: { host: mqtt.host, port: mqtt.port, provisioningHost: mqtt.provisioningHost },
    https: https ? { host: https.host, port: https.port, provisioningHost: https.provisioningHost } : null,
    amqp: amqp ? { host: amqp.host, port: amqp.port, provisioningHost: amqp.provisioningHost } : null,
    webSockets: webSockets
      ? {
          url: webSockets.url,
          port: webSockets.port,
          provisioningHost: webSockets.provisioningHost,
          subprotocols: webSockets.subprotocols,
        }
      : null,
    // The service API's connection string (enrollments with azure-iot-provisioning-service), as the
    // banner prints it: a test reading this file needs it as much as the hubs' (null without HTTPS).
    serviceConnectionString: emulator.serviceConnectionString ?? null,
    // Each linked hub's registry connection string and, with AMQP, its built-in endpoint's (the
    // Event Hubs-compatible connection string @azure/event-hubs reads telemetry with).
    hubs: emulator.linkedHubs.map((hub) => ({
      hostName: hub.hostName,
      connectionString: emulator.hubConnectionString(hub.hostName),
      eventHubConnectionString: amqp ? emulator.eventHubConnectionString(hub.hostName) : null,
      // The consumer groups its built-in endpoint has (`$Default` and the config's).
      consumerGroups: consumerGroupsOf(hub.consumerGroups),
    })),
    caCertPath: emulator.caCertPath,
    stateDir: emulator.stateDir,
  };
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
