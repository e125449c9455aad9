import { createDeviceKeyDeriver } from '@dpskit/contracts/keys';
import { InvalidOptionError } from './errors.js';
import { runFleetOnWorkers, workerPlan } from './fleet-workers.js';
import {
  checkKey,
  checkTransport,
  checkWholeNumber,
  DEFAULT_CONCURRENCY,
  MAX_CONCURRENCY,
  MAX_FLEET_COUNT,
  MAX_WORKERS,
} from './inputs.js';
import { isPlainObject } from './payload.js';
import type { RegisterOptions } from './register.js';
import { type FleetSummary, FleetTally } from './stats.js';
import { checkFleetTemplates, fleetDevice, type RegistrationIdTemplate } from './template.js';
import { createSharedTlsContext } from './transport/tls-context.js';
import type { OutcomeStatus, RegistrationOutcome, TransportName } from './types.js';

export interface FleetOptions {
  provisioningHost?: string;
  idScope: string;
  /** The enrollment group key; each device's key is derived from it and its registration id. */
  groupKey?: string;
  /**
   * X.509 devices instead of a group key: each device's certificate (followed by the intermediates it
   * presents) and private key, PEM. Called once per device, before it registers.
   */
  certificate?: (registrationId: string, index: number) => { cert: string; key: string };
  /** Number of devices. */
  count: number;
  /** Devices registering at the same time, each with its own connection. Default 50. */
  concurrency?: number;
  /**
   * Registration id template(s): `contoso-toaster-{n}`, `{n:4}` zero-pads. Several templates take
   * turns (round-robin), each numbered from `start`.
   */
  registrationIdTemplates: string | readonly string[];
  /** First device number. Default 1. */
  start?: number;
  transport?: TransportName;
  /**
   * Payload for every device; or payloads that take turns (device `index` of the fleet sends
   * `payload[index % payload.length]`, so with as many payloads as templates each template's devices
   * send their own); or a function giving one per device (undefined: none). An array crosses into
   * worker threads; a function keeps the fleet in this thread.
   */
  payload?:
    | Record<string, unknown>
    | readonly Record<string, unknown>[]
    | ((registrationId: string, index: number) => Record<string, unknown> | undefined);
  ca?: string;
  pollingIntervalMs?: number;
  /** Per-device deadline for a final answer (ms), retries included. Default: none. */
  timeoutMs?: number;
  /** Per device: registrations started again after a transient failure (see `RegisterOptions.retries`). Default 0. */
  retries?: number;
  /** First back-off before a retry (ms; default 1000), doubling up to 30 s, with jitter. */
  retryBackoffMs?: number;
  /** Aborting stops launching devices and cancels the ones in flight; the summary is still returned. */
  signal?: AbortSignal;
  /** Per-device wait for the SDK to let go after a cancel (ms). Default 2000. */
  cancelGraceMs?: number;
  /** Each assigned device connects to its hub afterwards (see `RegisterOptions.connect`). */
  connect?: RegisterOptions['connect'];
  onOutcome?: (outcome: RegistrationOutcome, index: number) => void;
  onProgress?: (progress: FleetProgress) => void;
  /**
   * Worker threads to spread the devices over (default 1: this thread). Each worker registers every
   * n-th device with its share of `concurrency` and its own TLS context; outcomes, progress and the
   * summary come back here as with one. Needs options a thread can receive: a `payload` object (not
   * a function) and `groupKey`; with a payload function or `certificate`, the fleet runs here.
   */
  workers?: number;
  /**
   * Only the devices of one shard: index % of === index (the others are some other runner's). The
   * summary and progress count this shard's devices; `count` and `concurrency` stay the fleet's
   * (the shard takes its share). Used by `runFleetOnWorkers`.
   */
  shard?: FleetShard;
}

export interface FleetShard {
  index: number;
  of: number;
}

export interface FleetProgress {
  requested: number;
  launched: number;
  /** Devices with an outcome (cancelled ones included). */
  finished: number;
  inFlight: number;
  byStatus: Record<OutcomeStatus, number>;
  elapsedMs: number;
}

/**
 * Registers `count` devices, at most `concurrency` at a time, each through its own SDK client and
 * connection (`registerDevice`), and summarizes the outcomes. Resolves with the summary even when
 * stopped through `signal`; rejects only with `InvalidOptionError` for bad options.
 */
export async function runFleet(options: FleetOptions): Promise<FleetSummary> {
  const checked = checkFleetOptions(options);
  const workers = checkWholeNumber({ field: 'workers', value: options.workers ?? 1 }, 1, MAX_WORKERS);
  if (workers > 1 && options.shard === undefined) {
    const plan = workerPlan(options, checked, workers);
    if (plan.workers > 1) return runFleetOnWorkers(options, checked, plan);
  }
  const { count, concurrency, start, templates, groupKey, transport } = checked;
  const shard = checkShard(options.shard);
  // Loaded here, not at the top: a fleet on worker threads never registers in this thread, which
  // then does not load the SDK (about 0.2 s of CPU).
  const { registerDevice } = await import('./register.js');
  // The group key decoded once for the fleet, not once per device.
  const deriveKey = groupKey !== undefined ? createDeviceKeyDeriver(groupKey) : undefined;
  // This runner's devices are fleet indexes shard.index, shard.index + of, …
  const shardCount = Math.max(0, Math.ceil((count - shard.index) / shard.of));
  const shardConcurrency = Math.max(1, Math.min(shareOf(concurrency, shard), shardCount));
  // One TLS context for every device of this runner (they all trust the same CA): building one per
  // connection was a tenth of the fleet's CPU. X.509 devices need their own (their certificate).
  const tlsContext = groupKey !== undefined ? createSharedTlsContext(options.ca) : undefined;

  const startedAt = performance.now();
  const tally = new FleetTally();
  const inFlight = new Set<AbortController>();
  let next = 0;
  let finished = 0;
  let stopped = options.signal?.aborted ?? false;
  const onStop = () => {
    stopped = true;
    for (const controller of inFlight) controller.abort();
  };
  options.signal?.addEventListener('abort', onStop, { once: true });

  const progress = (): FleetProgress => ({
    requested: shardCount,
    launched: next,
    finished,
    inFlight: inFlight.size,
    byStatus: { ...tally.byStatus },
    elapsedMs: Math.round(performance.now() - startedAt),
  });

  const worker = async (): Promise<void> => {
    while (!stopped && next < shardCount) {
      const index = shard.index + shard.of * next++;
      const { registrationId } = fleetDevice(templates, index, start);
      const payload = devicePayload(options.payload, registrationId, index);
      const controller = new AbortController();
      inFlight.add(controller);
      options.onProgress?.(progress());
      let outcome: RegistrationOutcome;
      try {
        outcome = await registerDevice({
          provisioningHost: options.provisioningHost,
          idScope: options.idScope,
          registrationId,
          ...(deriveKey !== undefined
            ? { deviceKey: deriveKey(registrationId) }
            : {
                certificate: (options.certificate as NonNullable<FleetOptions['certificate']>)(registrationId, index),
              }),
          transport,
          payload,
          ca: options.ca,
          pollingIntervalMs: options.pollingIntervalMs,
          timeoutMs: options.timeoutMs,
          retries: options.retries,
          retryBackoffMs: options.retryBackoffMs,
          cancelGraceMs: options.cancelGraceMs,
          signal: controller.signal,
          ...(tlsContext ? { tlsContext } : {}),
          ...(options.connect ? { connect: options.connect } : {}),
        });
      } catch (err) {
        // Only option errors get here (a payload function returning a non-object, a certificate
        // that cannot be read): stop the run.
        onStop();
        throw err;
      } finally {
        inFlight.delete(controller);
      }
      finished += 1;
      tally.add(outcome);
      options.onOutcome?.(outcome, index);
      options.onProgress?.(progress());
    }
  };

  try {
    await Promise.all(Array.from({ length: shardConcurrency }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onStop);
  }
  return tally.summary({
    transport,
    concurrency: options.shard ? shardConcurrency : concurrency,
    requested: shardCount,
    launched: next,
    durationMs: Math.round(performance.now() - startedAt),
    stoppedEarly: stopped && (next < shardCount || tally.cancelled > 0),
  });
}

/** The fleet's options, checked and normalized once (also for its workers). */
export interface CheckedFleet {
  count: number;
  concurrency: number;
  start: number;
  templates: RegistrationIdTemplate[];
  groupKey: string | undefined;
  transport: TransportName;
}

export function checkFleetOptions(options: FleetOptions): CheckedFleet {
  const count = checkWholeNumber({ field: 'count', value: options.count }, 1, MAX_FLEET_COUNT);
  const concurrency = Math.min(
    checkWholeNumber({ field: 'concurrency', value: options.concurrency ?? DEFAULT_CONCURRENCY }, 1, MAX_CONCURRENCY),
    count,
  );
  const start = checkWholeNumber({ field: 'start', value: options.start ?? 1 }, 0, Number.MAX_SAFE_INTEGER - count);
  const templates = checkFleetTemplates(
    { field: 'registrationIdTemplates', value: options.registrationIdTemplates },
    count,
    start,
  );
  if ((options.groupKey === undefined) === (options.certificate === undefined)) {
    throw new InvalidOptionError('groupKey', 'give exactly one of groupKey (symmetric keys) or certificate (X.509)');
  }
  const groupKey =
    options.groupKey === undefined ? undefined : checkKey({ field: 'groupKey', value: options.groupKey });
  const transport = checkTransport({ field: 'transport', value: options.transport ?? 'mqtt' });
  if (Array.isArray(options.payload)) {
    if (options.payload.length === 0) {
      throw new InvalidOptionError('payload', 'payload is an empty array: give at least one payload, or none');
    }
    const bad = options.payload.findIndex((p) => !isPlainObject(p));
    if (bad >= 0) {
      throw new InvalidOptionError('payload', `payload[${bad}] must be a plain object (it is sent as a JSON object)`);
    }
  }
  return { count, concurrency, start, templates, groupKey, transport };
}

/** The payload device `index` sends (see `FleetOptions.payload`). */
export function devicePayload(
  payload: FleetOptions['payload'],
  registrationId: string,
  index: number,
): Record<string, unknown> | undefined {
  if (typeof payload === 'function') return payload(registrationId, index);
  if (Array.isArray(payload)) return payload[index % payload.length];
  return payload as Record<string, unknown> | undefined;
}

function checkShard(shard: FleetShard | undefined): FleetShard {
  if (shard === undefined) return { index: 0, of: 1 };
  const of = checkWholeNumber({ field: 'shard.of', value: shard.of }, 1, MAX_CONCURRENCY);
  return { index: checkWholeNumber({ field: 'shard.index', value: shard.index }, 0, of - 1), of };
}

/** A shard's part of the fleet's concurrency: as even as can be, the first shards taking the rest. */
export function shareOf(total: number, shard: FleetShard): number {
  return Math.floor(total / shard.of) + (shard.index < total % shard.of ? 1 : 0);
}
