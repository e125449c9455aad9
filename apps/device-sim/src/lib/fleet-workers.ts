import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InvalidOptionError } from './errors.js';
import type { CheckedFleet, FleetOptions, FleetProgress, FleetShard } from './fleet.js';
import { type FleetSummary, FleetTally } from './stats.js';
import { fleetDevice } from './template.js';
import type { RegistrationOutcome } from './types.js';

/** What a fleet worker thread gets: the fleet's options a thread can receive, and its shard. */
export interface FleetWorkerData {
  options: Omit<
    FleetOptions,
    'payload' | 'certificate' | 'signal' | 'onOutcome' | 'onProgress' | 'workers' | 'shard'
  > & { payload?: Record<string, unknown> | readonly Record<string, unknown>[] };
  shard: FleetShard;
  progress: boolean;
}

/** What a fleet worker thread posts back. */
export type FleetWorkerMessage =
  | { type: 'outcomes'; outcomes: Array<[index: number, outcome: RegistrationOutcome]> }
  | { type: 'progress'; progress: FleetProgress }
  | { type: 'done'; launched: number }
  | { type: 'invalid'; field: string; message: string };

export interface WorkerPlan {
  workers: number;
}

/**
 * How many workers the fleet can use: no more than it has devices in flight at once, and one when
 * a per-device function (payload, certificate, connect.stay's onEvent) would have to cross into a thread.
 */
export function workerPlan(options: FleetOptions, checked: CheckedFleet, workers: number): WorkerPlan {
  // connect.stay carries an onEvent function too.
  if (typeof options.payload === 'function' || options.certificate !== undefined || options.connect?.stay) {
    return { workers: 1 };
  }
  return { workers: Math.min(workers, checked.concurrency, checked.count) };
}

// The worker runs the built module; under vitest this file is the .ts source, whose built twin
// (tests run after the build) is under dist/.
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? here.replace(/[\\/]src[\\/]lib[\\/]fleet-workers\.ts$/, '/dist/lib/fleet-worker.js')
    : here.replace(/fleet-workers\.js$/, 'fleet-worker.js');
}

/**
 * `runFleet` over `plan.workers` worker threads: worker w registers the fleet's devices w, w + n, …
 * with its share of the concurrency (its own SDK clients, event loop and TLS context, so that the
 * client uses every core). Every outcome is checked against the device it belongs to and tallied
 * here, once; a worker that dies leaves its unreported devices an `error` outcome (`WorkerError`).
 */
export function runFleetOnWorkers(
  options: FleetOptions,
  checked: CheckedFleet,
  plan: WorkerPlan,
): Promise<FleetSummary> {
  const { count, concurrency, start, templates, transport } = checked;
  const startedAt = performance.now();
  const tally = new FleetTally();
  const reported = new Uint8Array(count);
  const perWorker = Array.from({ length: plan.workers }, () => ({ launched: 0, inFlight: 0, done: false }));
  let finished = 0;
  let stopped = options.signal?.aborted ?? false;
  let invalid: InvalidOptionError | undefined;
  const threads: Worker[] = [];

  // An object or an array of them (not a function: workerPlan kept such a fleet in one thread).
  const payload = options.payload as FleetWorkerData['options']['payload'];
  const {
    signal: _signal,
    onOutcome: _onOutcome,
    onProgress: _onProgress,
    workers: _workers,
    certificate: _certificate,
    shard: _shard,
    payload: _payload,
    ...shared
  } = options;
  const progress = (): FleetProgress => ({
    requested: count,
    launched: perWorker.reduce((sum, w) => sum + w.launched, 0),
    finished,
    inFlight: perWorker.reduce((sum, w) => sum + w.inFlight, 0),
    byStatus: { ...tally.byStatus },
    elapsedMs: Math.round(performance.now() - startedAt),
  });
  const report = (index: number, outcome: RegistrationOutcome): void => {
    reported[index] = 1;
    finished += 1;
    tally.add(outcome);
    options.onOutcome?.(outcome, index);
  };
  const stopAll = () => {
    stopped = true;
    for (const thread of threads) thread.postMessage({ type: 'abort' });
  };
  options.signal?.addEventListener('abort', stopAll, { once: true });

  const runWorker = (w: number): Promise<void> =>
    new Promise((resolve) => {
      const shard = { index: w, of: plan.workers };
      const state = perWorker[w]!;
      const data: FleetWorkerData = {
        options: { ...shared, ...(payload !== undefined ? { payload } : {}) },
        shard,
        progress: options.onProgress !== undefined,
      };
      const thread = new Worker(workerScript(), { workerData: data });
      threads.push(thread);
      if (stopped) thread.postMessage({ type: 'abort' });
      let failure: string | undefined;
      thread.on('message', (message: FleetWorkerMessage) => {
        switch (message.type) {
          case 'outcomes': {
            for (const [index, outcome] of message.outcomes) {
              // A worker reports only its own devices, each once, under its own registration id.
              const expected = fleetDevice(templates, index, start).registrationId;
              if (index % shard.of !== shard.index || reported[index] === 1 || outcome.registrationId !== expected) {
                failure = `reported device ${index} (${outcome.registrationId}), not one of its own unreported devices`;
                void thread.terminate();
                return;
              }
              report(index, outcome);
            }
            options.onProgress?.(progress());
            return;
          }
          case 'progress':
            state.launched = message.progress.launched;
            state.inFlight = message.progress.inFlight;
            options.onProgress?.(progress());
            return;
          case 'done':
            state.launched = message.launched;
            state.inFlight = 0;
            state.done = true;
            // Its SDK clients may still hold timers or sockets: the work is over, end the thread.
            void thread.terminate();
            return;
          case 'invalid':
            // An option only a device's registration checks (e.g. the provisioning host): the run
            // stops and rejects with it, as in one thread. This worker has nothing left to do.
            invalid ??= new InvalidOptionError(message.field, message.message);
            stopAll();
            void thread.terminate();
            return;
        }
      });
      thread.on('error', (err) => {
        failure = err.message;
      });
      thread.on('exit', () => {
        if (!state.done && invalid === undefined) {
          // Every device of this shard without an outcome gets one: the worker ended under it.
          const why = failure ?? 'the worker thread ended before reporting';
          let launched = state.launched;
          for (let index = shard.index; index < count; index += shard.of) {
            if (reported[index] === 1) continue;
            if (stopped && index >= shard.index + shard.of * state.launched) continue;
            launched = Math.max(launched, (index - shard.index) / shard.of + 1);
            report(index, {
              registrationId: fleetDevice(templates, index, start).registrationId,
              transport,
              status: 'error',
              errorName: 'WorkerError',
              errorMessage: `the worker thread registering this device failed: ${why}`,
              durationMs: 0,
            });
          }
          state.launched = launched;
          state.inFlight = 0;
        }
        resolve();
      });
    });

  // Already stopped: no thread to start, nothing launched (as runFleet in this thread).
  const workers = stopped ? 0 : plan.workers;
  return Promise.all(Array.from({ length: workers }, (_, w) => runWorker(w)))
    .then(() => {
      if (invalid) throw invalid;
      const launched = perWorker.reduce((sum, w) => sum + w.launched, 0);
      return tally.summary({
        transport,
        concurrency,
        requested: count,
        launched,
        durationMs: Math.round(performance.now() - startedAt),
        stoppedEarly: stopped && (launched < count || tally.cancelled > 0),
      });
    })
    .finally(() => options.signal?.removeEventListener('abort', stopAll));
}
