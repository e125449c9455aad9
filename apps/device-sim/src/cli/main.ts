import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import { deriveDeviceKey } from '@dpskit/contracts';
import { InvalidOptionError } from '../lib/errors.js';
import { runFleet } from '../lib/fleet.js';
import { deriveKeysFromLines, formatDerivedKey } from '../lib/keys.js';
import { type RegisterOptions, registerDevice } from '../lib/register.js';
import { sdkApiVersion, sdkVersion } from '../lib/sdk/modules.js';
import { CANCELLED_ERROR_NAME } from '../lib/stats.js';
import {
  type Command,
  type ConnectionConfig,
  type Env,
  type FleetConfig,
  type KeysDeriveConfig,
  parseCommandLine,
  type RegisterConfig,
  UsageError,
} from './args.js';
import { HELP } from './help.js';
import { hintFor } from './output/hints.js';
import { outcomeJson } from './output/json.js';
import { ProgressLine } from './output/progress.js';
import { formatSummary } from './output/summary.js';
import { TutorialPrinter } from './output/tutorial.js';

export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
  env: Env;
  /** Subscribes to Ctrl-C (SIGINT); returns the unsubscribe function. */
  onInterrupt?: (handler: () => void) => () => void;
}

export const EXIT = { ok: 0, notAssigned: 1, usage: 2, interrupted: 130 } as const;

function packageVersion(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version?: string };
  return pkg.version ?? '0.0.0';
}

/** Runs one `device-sim` command line; resolves with the process exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(argv, io.env);
  } catch (err) {
    if (err instanceof UsageError) {
      if (argv.length === 0) {
        io.stderr.write(HELP.main);
        return EXIT.usage;
      }
      return usageError(io, err.message, err.command);
    }
    throw err;
  }
  try {
    switch (command.kind) {
      case 'help':
        io.stdout.write(HELP[command.topic]);
        return EXIT.ok;
      case 'version':
        io.stdout.write(
          `device-sim ${packageVersion()} (azure-iot-provisioning-device ${sdkVersion()}, DPS api-version ${sdkApiVersion()})\n`,
        );
        return EXIT.ok;
      case 'register':
        return await runRegister(command.config, io);
      case 'fleet':
        return await runFleetCommand(command.config, io);
      case 'keys-derive':
        return await runKeysDerive(command.config, io);
    }
  } catch (err) {
    if (err instanceof InvalidOptionError) return usageError(io, err.message, undefined);
    throw err;
  }
}

function usageError(io: CliIo, message: string, command: string | undefined): number {
  const help = command === undefined || command === 'main' ? 'device-sim --help' : `device-sim ${command} --help`;
  io.stderr.write(`device-sim: ${message}\nRun "${help}" for the options.\n`);
  return EXIT.usage;
}

function interruptible(io: CliIo, onFirst: () => void): () => void {
  return io.onInterrupt?.(onFirst) ?? (() => {});
}

type ConnectionOptions = Pick<
  RegisterOptions,
  'provisioningHost' | 'idScope' | 'transport' | 'payload' | 'ca' | 'pollingIntervalMs' | 'timeoutMs'
>;

/** The connection settings `register` and `fleet` hand on alike to the registration code. */
function connectionOptions(config: ConnectionConfig): ConnectionOptions {
  return {
    provisioningHost: config.provisioningHost,
    idScope: config.idScope,
    transport: config.transport,
    payload: config.payload,
    ca: config.ca,
    pollingIntervalMs: config.pollingIntervalMs,
    timeoutMs: config.timeoutMs,
  };
}

async function runRegister(config: RegisterConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  const unsubscribe = interruptible(io, () => controller.abort());
  const printer = config.json ? undefined : new TutorialPrinter((text) => io.stdout.write(text));
  printer?.banner(sdkVersion());
  try {
    const outcome = await registerDevice({
      ...connectionOptions(config),
      registrationId: config.registrationId,
      deviceKey: config.deviceKey,
      groupKey: config.groupKey,
      signal: controller.signal,
      onStatus: printer ? (s) => printer.status(s) : undefined,
    });
    const hint = hintFor(outcome, {
      provisioningHost: config.provisioningHost,
      transport: config.transport,
      caGiven: config.ca !== undefined,
    });
    if (printer) printer.result(outcome, hint);
    else io.stdout.write(outcomeJson(outcome, hint));
    if (outcome.status === 'assigned') return EXIT.ok;
    return outcome.errorName === CANCELLED_ERROR_NAME ? EXIT.interrupted : EXIT.notAssigned;
  } finally {
    unsubscribe();
  }
}

async function runFleetCommand(config: FleetConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  let interrupted = false;
  const unsubscribe = interruptible(io, () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write(
      `${io.stderr.isTTY ? '\n' : ''}device-sim: stopping: no new devices, cancelling those in flight (Ctrl-C again to quit at once)\n`,
    );
    controller.abort();
  });
  const progress = config.progress && io.stderr.isTTY === true ? new ProgressLine(io.stderr) : undefined;
  let last: Parameters<ProgressLine['update']>[0] | undefined;
  try {
    const summary = await runFleet({
      ...connectionOptions(config),
      groupKey: config.groupKey,
      count: config.count,
      concurrency: config.concurrency,
      registrationIdTemplates: config.templates,
      start: config.start,
      signal: controller.signal,
      onProgress: progress
        ? (p) => {
            last = p;
            progress.update(p);
          }
        : undefined,
    });
    progress?.finish(last);
    io.stdout.write(config.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
    if (interrupted) return EXIT.interrupted;
    return summary.byStatus.error > 0 ? EXIT.notAssigned : EXIT.ok;
  } finally {
    unsubscribe();
  }
}

async function runKeysDerive(config: KeysDeriveConfig, io: CliIo): Promise<number> {
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
