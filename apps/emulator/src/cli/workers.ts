import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { type LogSink, removeReadyFile, writeReadyFile } from '@dpskit/node-kit';
import type { StartArgs } from './args.js';

/**
 * `dps-emulator start --workers N`: this process becomes a `node:cluster` primary that serves
 * nothing itself. It forks the first worker alone (it migrates the store, seeds the config's
 * enrollments, writes the TLS files, resumes what a previous run left unfinished and runs the web
 * view), then the others on the same arguments: every worker listens on the same MQTT, HTTPS and
 * AMQP ports (the primary accepts and hands connections round-robin; port 0 is one free port for
 * all) and opens the same SQLite store (WAL, busy timeout 5 s). A poll is answered from the store,
 * so it may land on any worker. The primary writes the banner and `--ready-file` once all are up,
 * and stops them all on SIGINT/SIGTERM or when one exits unexpectedly.
 */

/** The environment variable that tells a forked process which worker it is (1 to N). */
const WORKER_ENV = 'DPSKIT_EMULATOR_WORKER';

/** What the first worker tells the primary once it is listening. */
export interface WorkerReady {
  type: 'dpskit-worker-ready';
  banner: string;
  details: Record<string, unknown>;
}

interface WorkerIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** In a worker of `--workers`: its number (1 is the first); undefined in the primary or a single process. */
export function workerNumber(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number(process.env[WORKER_ENV]);
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** Every log line of a worker names it, so a log shows which worker ran an allocation and which answered a poll. */
export function workerSink(sink: LogSink, worker: number): LogSink {
  return (record) => sink({ ...record, worker });
}

/** A worker tells the primary it is listening (the first also sends what the banner and ready file show). */
export function reportReady(banner: string, details: Record<string, unknown>): void {
  const message: WorkerReady = { type: 'dpskit-worker-ready', banner, details };
  process.send?.(message);
}

/** Resolves when the primary asks this worker to stop, the primary is gone, or a signal arrives. */
export function untilPrimaryStops(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('message', onMessage);
      process.off('disconnect', stop);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    const onMessage = (message: unknown) => {
      if ((message as { type?: unknown } | null)?.type === 'dpskit-worker-stop') stop();
    };
    process.on('message', onMessage);
    process.on('disconnect', stop);
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * Ends a worker's IPC channel once it has stopped, so that its process can exit with its exit
 * code: through the worker's own `disconnect()`, since on a bare `process.disconnect()` the cluster
 * module exits the worker at once with code 0.
 */
export function leavePrimary(): void {
  if (cluster.worker?.isConnected()) cluster.worker.disconnect();
}

/** The primary of `--workers N` (N > 1); resolves with the exit code once every worker has exited. */
export async function runPrimary(
  args: StartArgs & { workers: number },
  argv: readonly string[],
  io: WorkerIo,
  bannerStream: NodeJS.WritableStream,
): Promise<number> {
  // The built command line, whichever script started this process (workers run the CLI itself).
  cluster.setupPrimary({ exec: fileURLToPath(new URL('../cli.js', import.meta.url)), args: [...argv] });
  if (args.readyFile) await removeReadyFile(args.readyFile);
  const workers: Worker[] = [];
  const exits = new Map<Worker, Promise<number | null>>();
  let stopping = false;
  let failed: string | undefined;
  let onUnexpectedExit: () => void = () => {};

  const fork = (n: number): Promise<WorkerReady> => {
    const worker = cluster.fork({ [WORKER_ENV]: String(n) });
    workers.push(worker);
    exits.set(
      worker,
      new Promise((resolve) =>
        worker.once('exit', (code, signal) => {
          if (!stopping) {
            failed ??= `worker ${n} (pid ${worker.process.pid}) exited (${signal ?? `code ${code}`})`;
            onUnexpectedExit();
          }
          resolve(signal ? null : code);
        }),
      ),
    );
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if ((message as { type?: unknown } | null)?.type === 'dpskit-worker-ready') resolve(message as WorkerReady);
      });
      worker.once('exit', () => reject(new Error(failed ?? `worker ${n} stopped before it was listening`)));
    });
  };

  const stopAll = async (): Promise<boolean> => {
    stopping = true;
    for (const worker of workers) {
      if (worker.isConnected()) worker.send({ type: 'dpskit-worker-stop' });
    }
    const codes = await Promise.all(exits.values());
    return codes.every((code) => code === 0);
  };

  let first: WorkerReady;
  try {
    // The first alone: it alone migrates, seeds and resumes; the others then find all of it done.
    first = await fork(1);
    await Promise.all(Array.from({ length: args.workers - 1 }, (_, i) => fork(i + 2)));
  } catch (err) {
    io.stderr.write(`dps-emulator: could not start ${args.workers} workers: ${(err as Error).message}\n`);
    await stopAll();
    return 1;
  }

  const pids = workers.map((worker) => worker.process.pid);
  bannerStream.write(
    `${first.banner}Serving from ${args.workers} worker processes (pids ${pids.join(', ')}), one store: ${String(first.details.stateDir)}\n`,
  );
  if (args.readyFile) {
    try {
      await writeReadyFile(args.readyFile, { ...first.details, workers: args.workers, workerPids: pids });
    } catch (err) {
      io.stderr.write(`dps-emulator: could not write --ready-file: ${(err as Error).message}\n`);
      await stopAll();
      return 1;
    }
  }

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    onUnexpectedExit = stop;
    if (failed) stop();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  if (args.readyFile) await removeReadyFile(args.readyFile);
  if (failed) io.stderr.write(`dps-emulator: ${failed}; stopping the other workers\n`);
  const clean = await stopAll();
  return failed || !clean ? 1 : 0;
}
