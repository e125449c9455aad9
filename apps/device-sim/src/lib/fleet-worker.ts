import { parentPort, workerData } from 'node:worker_threads';
import { InvalidOptionError } from './errors.js';
import { type FleetProgress, runFleet } from './fleet.js';
import type { FleetWorkerData, FleetWorkerMessage } from './fleet-workers.js';
import type { RegistrationOutcome } from './types.js';

// A worker thread of `runFleet({ workers })`: runs its shard of the fleet and posts its outcomes,
// its progress and its end to the thread that tallies them (fleet-workers.ts).
const port = parentPort;
if (!port) throw new Error('fleet-worker.js runs as a worker thread of runFleet');
const data = workerData as FleetWorkerData;
const post = (message: FleetWorkerMessage) => port.postMessage(message);
const controller = new AbortController();
port.on('message', (message: { type: string }) => {
  if (message.type === 'abort') controller.abort();
});

// Outcomes go out in batches, at most BATCH_MS after the first of a batch: a message per device
// cost each side a structured clone and an event (1.7% of a fleet's client CPU over 2 workers).
// Progress (a terminal's bar) goes with them, its latest state only; whatever is left goes before
// 'done'.
const BATCH_MS = 50;
let batch: Array<[index: number, outcome: RegistrationOutcome]> = [];
let progress: FleetProgress | undefined;
let flushTimer: NodeJS.Timeout | undefined;
const flush = () => {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (batch.length > 0) post({ type: 'outcomes', outcomes: batch });
  if (progress) post({ type: 'progress', progress });
  batch = [];
  progress = undefined;
};
const flushSoon = () => {
  flushTimer ??= setTimeout(flush, BATCH_MS);
};

try {
  const summary = await runFleet({
    ...data.options,
    shard: data.shard,
    signal: controller.signal,
    onOutcome: (outcome, index) => {
      batch.push([index, outcome]);
      flushSoon();
    },
    ...(data.progress
      ? {
          onProgress: (latest: FleetProgress) => {
            progress = latest;
            flushSoon();
          },
        }
      : {}),
  });
  flush();
  post({ type: 'done', launched: summary.launched });
} catch (err) {
  flush();
  if (!(err instanceof InvalidOptionError)) throw err;
  post({ type: 'invalid', field: err.field, message: err.message });
}
