// The bench's own clients as one script, for packages/e2e's end-to-end bench (which runs it as a
// process of its own): `node lean-clients.js <kind> <options JSON>`.
//   handshake: bare TLS handshakes (device-tls.ts: connect, verify the server, close): the ceiling;
//   mqtt:      the lean DPS device (lean-mqtt-device.ts) registering over MQTT.
// Like `device-sim fleet`, the devices are spread over worker threads (this same file), each with one
// TLS context and its share of the concurrency, so that client and ceiling use the cores alike. A
// worker loads only what its kind uses (the handshake workers: node:tls), so that neither client's
// CPU or time counts module loading the other does not do.
// Prints one JSON line: { completed, failed, firstError, wallMs, latenciesMs }.
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface LeanRun {
  kind: 'handshake' | 'mqtt';
  host: string;
  port: number;
  /** The CA to trust (PEM). */
  ca: string;
  count: number;
  concurrency: number;
  workers?: number;
  /** mqtt: registration ids `${prefix}${n}`, n from 1; keys derived from groupKey. */
  prefix?: string;
  idScope?: string;
  groupKey?: string;
  /** Per device (ms): a device without a final answer by then fails. */
  timeoutMs?: number;
}

interface Shard {
  run: LeanRun;
  index: number;
  of: number;
}

export interface LeanRunResult {
  completed: number;
  failed: number;
  firstError?: string;
  wallMs: number;
  latenciesMs: number[];
}

/** One device's work for `run.kind`, built once per worker. */
async function deviceTask(run: LeanRun): Promise<(device: number) => Promise<void>> {
  const tls = await import('node:tls');
  const secureContext = tls.createSecureContext({ ca: run.ca });
  const target = { host: run.host, port: run.port, secureContext };
  if (run.kind === 'handshake') {
    const { bareHandshake } = await import('./device-tls.js');
    return () => bareHandshake(target);
  }
  const [{ registerLean }, { createDeviceKeyDeriver }] = await Promise.all([
    import('./lean-mqtt-device.js'),
    import('@dpskit/contracts/keys'),
  ]);
  const derive = createDeviceKeyDeriver(run.groupKey ?? '');
  const idScope = run.idScope ?? '';
  return async (device) => {
    const registrationId = `${run.prefix ?? ''}${device + 1}`;
    const { status, body } = await registerLean(
      { ...target, idScope },
      { registrationId, key: derive(registrationId) },
      run.timeoutMs,
    );
    if (status !== 200 || body.status !== 'assigned') {
      throw new Error(`${registrationId}: ${status} ${JSON.stringify(body).slice(0, 200)}`);
    }
  };
}

/** A worker's shard: devices index, index + of, … with its share of the concurrency. */
async function runShard({ run, index, of }: Shard): Promise<Omit<LeanRunResult, 'wallMs'>> {
  const task = await deviceTask(run);
  const devices: number[] = [];
  for (let i = index; i < run.count; i += of) devices.push(i);
  const concurrency = Math.max(1, Math.floor(run.concurrency / of) + (index < run.concurrency % of ? 1 : 0));
  const result: Omit<LeanRunResult, 'wallMs'> = { completed: 0, failed: 0, latenciesMs: [] };
  let next = 0;
  const lane = async () => {
    while (next < devices.length) {
      const device = devices[next++] as number;
      const started = performance.now();
      try {
        await task(device);
        result.completed += 1;
        result.latenciesMs.push(performance.now() - started);
      } catch (err) {
        result.failed += 1;
        result.firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, lane));
  return result;
}

/** Runs `run` over its worker threads; resolves with the merged result. */
async function runLean(run: LeanRun): Promise<LeanRunResult> {
  const workers = Math.max(1, Math.min(run.workers ?? availableParallelism(), run.concurrency, run.count));
  const started = performance.now();
  const parts = await Promise.all(
    Array.from(
      { length: workers },
      (_, index) =>
        new Promise<Omit<LeanRunResult, 'wallMs'>>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { run, index, of: workers } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const wallMs = performance.now() - started;
  const merged: LeanRunResult = { completed: 0, failed: 0, wallMs, latenciesMs: [] };
  for (const part of parts) {
    merged.completed += part.completed;
    merged.failed += part.failed;
    merged.firstError ??= part.firstError;
    merged.latenciesMs.push(...part.latenciesMs);
  }
  return merged;
}

if (!isMainThread) {
  parentPort?.postMessage(await runShard(workerData as Shard));
} else {
  const [kind, json] = process.argv.slice(2);
  if (kind !== 'handshake' && kind !== 'mqtt') throw new Error('usage: lean-clients.js handshake|mqtt <options JSON>');
  const run: LeanRun = { ...(JSON.parse(json ?? '{}') as Omit<LeanRun, 'kind'>), kind };
  process.stdout.write(`${JSON.stringify(await runLean(run))}\n`);
}
