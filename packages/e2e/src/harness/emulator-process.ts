import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RunResult, run } from '@dpskit/packaging';

const require = createRequire(import.meta.url);
const packageJsonPath = require.resolve('@dpskit/emulator/package.json');
const bin = (require(packageJsonPath) as { bin: Record<string, string> }).bin['dps-emulator'];

/** The installed `dps-emulator` command, as a user runs it. */
export const EMULATOR_CLI = join(dirname(packageJsonPath), bin ?? 'dist/cli.js');

/** What `dps-emulator start --ready-file` writes once every listener is bound. */
export interface EmulatorReady {
  ready: true;
  pid: number;
  idScope: string;
  mqtt: { host: string; port: number; provisioningHost: string };
  https: { host: string; port: number; provisioningHost: string } | null;
  caCertPath: string;
  stateDir: string;
}

export interface EmulatorProcess {
  ready: EmulatorReady;
  child: ChildProcess;
  /** Everything the process wrote to stdout (JSON log lines with `--log-format json`) so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with how the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `dps-emulator start <args> --ready-file <readyFile>` in a child process and resolves once the
 * ready file is there. Rejects if the process ends first, or after `maxWaitMs` (a hang bound for a
 * loaded machine, not a speed requirement).
 */
export async function startEmulatorProcess(
  args: readonly string[],
  readyFile: string,
  maxWaitMs = 120_000,
): Promise<EmulatorProcess> {
  const child = spawn(process.execPath, [EMULATOR_CLI, 'start', ...args, '--ready-file', readyFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    });
  });
  const deadline = performance.now() + maxWaitMs;
  while (!existsSync(readyFile)) {
    if (ended) throw new Error(`dps-emulator ended before it was ready:\n${stderr}\n${stdout}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dps-emulator was not ready after ${maxWaitMs} ms:\n${stderr}\n${stdout}`);
    }
    await sleep(50);
  }
  const ready = JSON.parse(await readFile(readyFile, 'utf8')) as EmulatorReady;
  return { ready, child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** `dps-emulator <args>` to its end (e.g. `registrations list --json`). */
export function runEmulatorCli(args: readonly string[]): Promise<RunResult> {
  return run(process.execPath, [EMULATOR_CLI, ...args]);
}
