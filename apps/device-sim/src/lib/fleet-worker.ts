import { parentPort, workerData } from 'node:worker_threads';
import { InvalidOptionError } from './errors.js';
import { runFleet } from './fleet.js';
import type { FleetWorkerData, FleetWorkerMessage } from './fleet-workers.js';

// A worker thread of `runFleet({ workers })`: runs its shard of the fleet and posts each outcome,
// its progress and its end to the thread that tallies them (fleet-workers.ts).
const port = parentPort;
if (!port) throw new Error('fleet-worker.js runs as a worker thread of runFleet');
const data = workerData as FleetWorkerData;
const post = (message: FleetWorkerMessage) => port.postMessage(message);
const controller = new AbortController();
port.on('message', (message: { type: string }) => {
  if (message.type === 'abort') controller.abort();
});

try {
  const summary = await runFleet({
    ...data.options,
    shard: data.shard,
    signal: controller.signal,
    onOutcome: (outcome, index) => post({ type: 'outcome', index, outcome }),
    ...(data.progress ? { onProgress: (progress) => post({ type: 'progress', progress }) } : {}),
  });
  post({ type: 'done', launched: summary.launched });
} catch (err) {
  if (!(err instanceof InvalidOptionError)) throw err;
  post({ type: 'invalid', field: err.field, message: err.message });
}
