#!/usr/bin/env node
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  createLineWriter,
  isLogLevel,
  LOG_LEVELS,
  type LogLevel,
  PortError,
  parseCommandLine,
  removeReadyFile,
  reportUsageError,
  UsageError,
  writeReadyFile,
} from '@dpskit/node-kit';
import { droppedLinesRecord, formatHumanLine, formatJsonLine } from '../log/format.js';
import type { AllocatorLogRecord } from '../log/record.js';
import { startAllocatorHost } from './allocator-host.js';
import { type CliOptions, parseCliArgs, USAGE } from './cli-args.js';
import { functionKeyProblem, maskCode } from './function-key.js';
import { applyLocalSettings } from './local-settings.js';

/**
 * process.stderr for usage problems, created only when one is written: Node builds the stream on
 * first access (for a pipe, a net.Socket), about 1.5 ms of main-thread CPU of a cold start on the
 * 2-core machine under load, on the way to the first answer that usually never writes there (issue #13).
 */
const stderr = { write: (text: string): boolean => process.stderr.write(text) };

/** Exit codes: 0 clean stop, 1 could not start (e.g. port in use), 2 bad usage. */
async function main(): Promise<number> {
  const parsed = parseCommandLine('dpskit-allocator', stderr, () => parseCliArgs(process.argv.slice(2)));
  if (!parsed.ok) return parsed.exitCode;
  const options: CliOptions = parsed.value;
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  let appDir: string | undefined;
  if (options.appDir !== undefined) {
    appDir = path.resolve(invocationDir(), options.appDir);
    const problem = await folderProblem(appDir);
    if (problem) {
      return usageError(`Invalid app folder '${options.appDir}': ${problem}.`);
    }
    // As `func start` does, before the key is read: ALLOCATOR_FUNCTION_KEY may come from there.
    try {
      await applyLocalSettings(appDir);
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      return 2;
    }
  }
  const envKey = process.env.ALLOCATOR_FUNCTION_KEY;
  const functionKey = envKey === undefined || envKey === '' ? undefined : envKey;
  if (functionKey !== undefined) {
    const problem = functionKeyProblem(functionKey);
    if (problem) {
      return usageError(`Invalid ALLOCATOR_FUNCTION_KEY: ${problem}.`);
    }
  }

  // Read after local.settings.json like the key; the option wins.
  let logLevel: LogLevel = 'info';
  if (options.logLevel !== undefined) {
    logLevel = options.logLevel;
  } else {
    const envLevel = process.env.ALLOCATOR_LOG_LEVEL;
    if (envLevel !== undefined && envLevel !== '') {
      if (!isLogLevel(envLevel)) {
        return usageError(
          `Invalid ALLOCATOR_LOG_LEVEL '${envLevel}': expected ${LOG_LEVELS.slice(0, -1).join(', ')} or ${LOG_LEVELS.at(-1)}.`,
        );
      }
      logLevel = envLevel;
    }
  }

  // A closed log pipe (e.g. `| head`) must not take the server down: further log lines are dropped.
  let stdoutBroken = false;
  process.stdout.on('error', () => {
    stdoutBroken = true;
  });
  const format = options.format ?? (process.stdout.isTTY ? 'human' : 'json');
  // One write per event-loop turn rather than per line (a request logs seven); flushed on exit. A
  // reader of the pipe more than 4 MiB behind (node-kit's DEFAULT_MAX_KEPT_BYTES) has lines dropped
  // rather than kept without bound, and then reads one warning that says how many.
  const out = createLineWriter(process.stdout, {
    droppedLine: (count) => (format === 'json' ? formatJsonLine : formatHumanLine)(droppedLinesRecord(count)),
  });
  // What the app writes to stdout itself (console.log) goes out in its place among these lines, and is
  // kept for a stalled reader and flushed at exit like them (cli-console-order.test.ts).
  out.captureStreamWrites();
  process.on('exit', () => {
    if (!stdoutBroken) out.flush();
  });

  const print = (record: AllocatorLogRecord): void => {
    if (stdoutBroken) return;
    out.write(format === 'json' ? formatJsonLine(record) : formatHumanLine(record));
  };

  let host: Awaited<ReturnType<typeof startAllocatorHost>>;
  try {
    // A file left by an earlier run must not announce this one.
    if (options.readyFile !== undefined) await removeReadyFile(options.readyFile);
    host = await startAllocatorHost({
      ...(appDir !== undefined ? { appDir, localSettings: false } : {}),
      ...(options.functionName !== undefined ? { functionName: options.functionName } : {}),
      port: options.port,
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(functionKey !== undefined ? { functionKey } : {}),
      log: print,
      logLevel,
    });
  } catch (err) {
    const reason =
      err instanceof PortError ? err.message : `could not start: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`dpskit-allocator: ${reason}\n`);
    return 1;
  }

  // A generated key is printed in full, since nobody else knows it; a key from the environment is masked.
  const webhookUrl = functionKey === undefined ? host.webhookUrl : maskCode(host.webhookUrl);
  const keyNote =
    functionKey === undefined
      ? 'generated function key; set ALLOCATOR_FUNCTION_KEY to choose your own'
      : 'function key from ALLOCATOR_FUNCTION_KEY';
  if (format === 'json') {
    print({
      time: new Date().toISOString(),
      level: 'info',
      source: 'host',
      msg: 'Webhook URL',
      data: { webhookUrl, keySource: functionKey === undefined ? 'generated' : 'environment' },
    });
  } else if (!stdoutBroken) {
    out.write(`\nWebhook URL for the enrollment group (${keyNote}):\n  ${webhookUrl}\n`);
  }
  // Whoever sees the ready file (or the first request's lines) sees the URL line first.
  if (!stdoutBroken) out.flush();

  if (options.readyFile !== undefined) {
    try {
      // The webhook URL as printed above: a generated key in full, a key from the environment masked.
      await writeReadyFile(options.readyFile, {
        url: host.url,
        port: host.port,
        webhookUrl,
        functions: host.functions.map(({ name, methods, url }) => ({ name, methods, url })),
      });
    } catch (err) {
      process.stderr.write(`dpskit-allocator: could not write --ready-file: ${(err as Error).message}\n`);
      await host.close();
      return 1;
    }
  }

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  if (options.readyFile !== undefined) await removeReadyFile(options.readyFile);
  await host.close();
  return 0;
}

/** Exit 2 with a usage problem found after parsing (a bad folder or key), said as every dpskit CLI says it. */
function usageError(problem: string): number {
  return reportUsageError('dpskit-allocator', stderr, new UsageError(problem, { command: 'start' }));
}

/**
 * Where relative paths are meant from: the user's shell folder. \`pnpm --filter @dpskit/allocator
 * start -- ../app\` runs this script in the package folder and passes the shell's folder as INIT_CWD.
 */
function invocationDir(): string {
  return process.env.npm_package_name === '@dpskit/allocator' && process.env.INIT_CWD
    ? process.env.INIT_CWD
    : process.cwd();
}

async function folderProblem(dir: string): Promise<string | undefined> {
  try {
    return (await stat(dir)).isDirectory() ? undefined : `${dir} is not a folder`;
  } catch {
    return `${dir} does not exist`;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
