import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogRecord } from '@dpskit/node-kit';
import type { EmulatorConfigInput } from '../config/schema.js';
import { startArgs } from './cli-io.js';
import type { EmulatorView } from './sdk.js';

/** The built command line (`npm test` builds the package first). */
export const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliEmulator {
  view: EmulatorView;
  /** Its process id (for faults a test puts on the process, e.g. a file size limit). */
  pid: number;
  stateDir: string;
  /** The JSON log lines it wrote so far. */
  log(): LogRecord[];
  /**
   * Resolves when it next writes to stdout (a log line may have come); rejects once it has exited,
   * so that a wait for a line it will never write ends with its stderr instead of hanging.
   */
  nextOutput(): Promise<void>;
  /** What it wrote to stderr so far (a failing exit code's cause). */
  stderr(): string;
  /** `dps-emulator <args>` on the same state folder, to its end (e.g. `registrations list --json`). */
  cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** SIGTERM, then resolves with its exit code; removes the state folder. */
  stop(): Promise<number | null>;
  /**
   * SIGKILL (a crash: nothing of it runs after), then resolves once it has exited; keeps the state
   * folder, for a start on it again (`startCliEmulator`'s `stateDir`).
   */
  kill(): Promise<void>;
}

/**
 * `dps-emulator start` (the built CLI) in its own process, on free ports, with `config`: for tests
 * whose many SDK clients must not share an event loop with the emulator (on a loaded machine the
 * SDK's 30 s request timeout then measures the test process, not the emulator). Resolves
 * when its `--ready-file` is written; waits at most `maxWaitMs` (a hang bound, not a speed check).
 */
export async function startCliEmulator(
  config: EmulatorConfigInput,
  args: readonly string[] = [],
  maxWaitMs = 120_000,
  /** `stateDir`: a state folder to start on (one a killed emulator left); its stop() removes it then. */
  options: { stateDir?: string } = {},
): Promise<CliEmulator> {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: build the package first (npm test does)`);
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-cli-emulator-'));
  const configFile = join(dir, 'config.json');
  const readyFile = join(dir, 'ready.json');
  const stateDir = options.stateDir ?? join(dir, 'state');
  writeFileSync(configFile, JSON.stringify(config));
  const node = (cliArgs: readonly string[]): ChildProcess =>
    spawn(process.execPath, [BUILT_CLI, ...cliArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = node(
    startArgs(stateDir, '--config', configFile, '--ready-file', readyFile, '--log-format', 'json', ...args),
  );
  let stdout = '';
  let stderr = '';
  // Waits for its next output (nextOutput), woken by each chunk and by its exit.
  const outputWaiters = new Set<() => void>();
  const wakeOutputWaiters = () => {
    const waiters = [...outputWaiters];
    outputWaiters.clear();
    for (const wake of waiters) wake();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    wakeOutputWaiters();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exitCode = code;
      resolve(code);
      wakeOutputWaiters();
    }),
  );
  const deadline = performance.now() + maxWaitMs;
  while (!existsSync(readyFile)) {
    if (exitCode !== undefined || performance.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`dps-emulator did not get ready:\n${stderr}\n${stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as {
    idScope: string;
    mqtt: { host: string; port: number; provisioningHost: string };
    https: { host: string; port: number; provisioningHost: string } | null;
    amqp?: { host: string; port: number; provisioningHost: string } | null;
    caCertPath: string;
  };
  const view: EmulatorView = {
    idScope: ready.idScope,
    endpoints: {
      mqtt: ready.mqtt,
      ...(ready.https ? { https: ready.https } : {}),
      ...(ready.amqp ? { amqp: ready.amqp } : {}),
    },
    caCertPem: readFileSync(ready.caCertPath, 'utf8'),
  };
  return {
    view,
    pid: child.pid as number,
    stateDir,
    // Whole lines only: a chunk may end mid-line, and the rest of that line is still on its way.
    log: () =>
      stdout
        .slice(0, stdout.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogRecord),
    nextOutput: () =>
      new Promise<void>((resolve, reject) => {
        const settle = () =>
          exitCode === undefined
            ? resolve()
            : reject(new Error(`dps-emulator exited (${exitCode}) before the output waited for:\n${stderr}`));
        if (exitCode !== undefined) settle();
        else outputWaiters.add(settle);
      }),
    stderr: () => stderr,
    cli: (cliArgs) =>
      new Promise((resolve) => {
        const run = node([...cliArgs, '--state-dir', stateDir]);
        let out = '';
        let err = '';
        run.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
        });
        run.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          err += chunk;
        });
        run.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
      }),
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      if (options.stateDir !== undefined) rmSync(options.stateDir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One refused hub device connection, as a CLI emulator started with `--log-level debug` logged it. */
export interface HubRefusal {
  /** The reason its worker's `hub.auth` debug line gives (one such line per refused connection). */
  reason: unknown;
  worker: unknown;
  /**
   * The reason the `hub.connect-refused` warning reporting it gives: the line in full naming the
   * device, or the count line that holds it under its reason; undefined if that warning says otherwise.
   */
  reported: unknown;
}

/**
 * The `n`th (from 1) refused connection of `deviceId` to a hub, once the emulator has logged it
 * and the `hub.connect-refused` warning that reports it. A worker logs at most one such warning in
 * full a second and counts the rest by reason, so two devices refused in the same second do not
 * both get a line naming them: which one does is chance. What is certain: the hub's `hub.auth`
 * debug line names the device and reason of every refusal, and the refusal is then reported, in
 * the same worker, by the next `hub.connect-refused` line of that worker: in full (written right
 * after the debug line) or, when the second already had its line in full, by the count line that
 * holds it (written before that worker's next line in full, a second later, or at its stop).
 */
export async function hubRefusal(child: CliEmulator, deviceId: string, n = 1): Promise<HubRefusal> {
  for (;;) {
    const log = child.log();
    const at = log
      .map((line, index) => ({ line, index }))
      .filter(({ line }) => line.event === 'hub.auth' && line.level === 'debug' && line.deviceId === deviceId)[n - 1];
    if (at) {
      const { worker, reason } = at.line;
      const warning = log
        .slice(at.index + 1)
        .find((line) => line.event === 'hub.connect-refused' && line.level === 'warn' && line.worker === worker);
      if (warning) {
        const reasons = warning.reasons as Record<string, number> | undefined;
        const reported =
          typeof warning.suppressed === 'number'
            ? (reasons?.[String(reason)] ?? 0) > 0
              ? reason
              : undefined
            : warning.deviceId === deviceId
              ? warning.reason
              : undefined;
        return { reason, worker, reported };
      }
    }
    await child.nextOutput();
  }
}

/** Every log line `match` accepts, once the emulator has written at least `n` of them. */
export async function loggedAll(child: CliEmulator, match: (line: LogRecord) => boolean, n = 1): Promise<LogRecord[]> {
  for (;;) {
    const lines = child.log().filter(match);
    if (lines.length >= n) return lines;
    await child.nextOutput();
  }
}

/** Matches the log lines of `event` about `deviceId`. */
export const about = (event: string, deviceId: string) => (line: LogRecord) =>
  line.event === event && line.deviceId === deviceId;
