import { deriveDeviceKey } from '@dpskit/contracts';
import { InvalidOptionError } from './errors.js';
import {
  checkKey,
  checkTransport,
  checkWholeNumber,
  DEFAULT_CONCURRENCY,
  MAX_CONCURRENCY,
  MAX_FLEET_COUNT,
} from './inputs.js';
import { type RegisterOptions, registerDevice } from './register.js';
import { type FleetSummary, FleetTally } from './stats.js';
import { checkFleetTemplates, fleetDevice } from './template.js';
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
  /** Payload for every device, or a function giving one per device (undefined: none). */
  payload?: Record<string, unknown> | ((registrationId: string, index: number) => Record<string, unknown> | undefined);
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
    requested: options.count,
    launched: next,
    finished,
    inFlight: inFlight.size,
    byStatus: { ...tally.byStatus },
    elapsedMs: Math.round(performance.now() - startedAt),
  });

  const worker = async (): Promise<void> => {
    while (!stopped && next < options.count) {
      const index = next++;
      const { registrationId } = fleetDevice(templates, index, start);
      const payload = typeof options.payload === 'function' ? options.payload(registrationId, index) : options.payload;
      const controller = new AbortController();
      inFlight.add(controller);
      options.onProgress?.(progress());
      let outcome: RegistrationOutcome;
      try {
        outcome = await registerDevice({
          provisioningHost: options.provisioningHost,
          idScope: options.idScope,
          registrationId,
          ...(groupKey !== undefined
            ? { deviceKey: deriveDeviceKey(groupKey, registrationId) }
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
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onStop);
  }
  return tally.summary({
    transport,
    concurrency,
    requested: options.count,
    launched: next,
    durationMs: Math.round(performance.now() - startedAt),
    stoppedEarly: stopped && (next < options.count || tally.cancelled > 0),
  });
}
