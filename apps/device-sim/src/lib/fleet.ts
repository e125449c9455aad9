import { decodeBase64Key, deriveDeviceKey, KeyError } from '@dpskit/contracts';
import { InvalidOptionError } from './errors.js';
import { registerDevice } from './register.js';
import { type FleetSummary, FleetTally } from './stats.js';
import { fleetDevice, fleetTemplatesProblem, parseTemplate, type RegistrationIdTemplate } from './template.js';
import type { OutcomeStatus, RegistrationOutcome, TransportName } from './types.js';

export const DEFAULT_CONCURRENCY = 50;
export const MAX_FLEET_COUNT = 10_000_000;

export interface FleetOptions {
  provisioningHost?: string;
  idScope: string;
  /** The enrollment group key; each device's key is derived from it and its registration id. */
  groupKey: string;
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
  /** Per-device deadline for a final answer (ms). Default: none. */
  timeoutMs?: number;
  /** Aborting stops launching devices and cancels the ones in flight; the summary is still returned. */
  signal?: AbortSignal;
  /** Per-device wait for the SDK to let go after a cancel (ms). Default 2000. */
  cancelGraceMs?: number;
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

function checkInteger(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(field, `${field} must be a whole number from ${min} to ${max}, not ${value}`);
  }
}

export function parseTemplates(input: string | readonly string[]): RegistrationIdTemplate[] {
  const sources = (typeof input === 'string' ? [input] : [...input])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (sources.length === 0) {
    throw new InvalidOptionError(
      'registrationIdTemplates',
      'give a registration id template such as contoso-toaster-{n}',
    );
  }
  return sources.map((source) => {
    const parsed = parseTemplate(source);
    if (!parsed.ok) throw new InvalidOptionError('registrationIdTemplates', parsed.message);
    return parsed.value;
  });
}

/**
 * Registers `count` devices, at most `concurrency` at a time, each through its own SDK client and
 * connection (`registerDevice`), and summarizes the outcomes. Resolves with the summary even when
 * stopped through `signal`; rejects only with `InvalidOptionError` for bad options.
 */
export async function runFleet(options: FleetOptions): Promise<FleetSummary> {
  checkInteger('count', options.count, 1, MAX_FLEET_COUNT);
  const concurrency = Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, options.count);
  checkInteger('concurrency', options.concurrency ?? DEFAULT_CONCURRENCY, 1, 100_000);
  const start = options.start ?? 1;
  checkInteger('start', start, 0, Number.MAX_SAFE_INTEGER - options.count);
  const templates = parseTemplates(options.registrationIdTemplates);
  const problem = fleetTemplatesProblem(templates, options.count, start);
  if (problem) throw new InvalidOptionError('registrationIdTemplates', problem);
  try {
    decodeBase64Key(options.groupKey, 'groupKey');
  } catch (err) {
    if (err instanceof KeyError) throw new InvalidOptionError('groupKey', err.message);
    throw err;
  }
  const transport = options.transport ?? 'mqtt';

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
          deviceKey: deriveDeviceKey(options.groupKey, registrationId),
          transport,
          payload,
          ca: options.ca,
          pollingIntervalMs: options.pollingIntervalMs,
          timeoutMs: options.timeoutMs,
          cancelGraceMs: options.cancelGraceMs,
          signal: controller.signal,
        });
      } catch (err) {
        // Only option errors get here (a payload function returning a non-object): stop the run.
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
