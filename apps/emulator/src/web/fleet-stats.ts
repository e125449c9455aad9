import { percentile } from '@dpskit/node-kit';
import type { AttemptSummary } from '../core/attempts.js';

/** What the fleet charts draw, computed in the page from the attempts it holds. */
export interface FleetStats {
  /** Attempts counted. */
  total: number;
  /** The window's seconds (Unix time), oldest first, ending at the newest attempt's second. */
  seconds: number[];
  /** Attempts per second in the window, by outcome. */
  rate: { assigned: number[]; failed: number[]; other: number[] };
  /** Latency (register request to outcome) per second in the window; null where none ended. */
  latency: { p50: (number | null)[]; p90: (number | null)[]; p99: (number | null)[] };
  /** Over every attempt held: count by outcome (`assigned`, `failed 400207`, `unauthorized`, …). */
  outcomes: Record<string, number>;
  /** Over every assigned attempt held: count by hub. */
  hubs: Record<string, number>;
  /** Over every attempt held. */
  overall: { p50: number; p90: number; p99: number } | null;
}

export type FleetAttempt = Pick<AttemptSummary, 'timestampUtc' | 'durationMs' | 'status' | 'assignedHub' | 'errorCode'>;

/**
 * Fleet statistics over `attempts` (any order). The time series cover the `windowSeconds` up to
 * the newest attempt, not up to now, so a finished run stays on the charts as it ended.
 */
export function fleetStats(attempts: readonly FleetAttempt[], windowSeconds = 120): FleetStats {
  const outcomes: Record<string, number> = {};
  const hubs: Record<string, number> = {};
  let newest = Number.NEGATIVE_INFINITY;
  const all: number[] = [];
  for (const attempt of attempts) {
    const key = outcomeKey(attempt);
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (attempt.status === 'assigned' && attempt.assignedHub)
      hubs[attempt.assignedHub] = (hubs[attempt.assignedHub] ?? 0) + 1;
    const second = secondOf(attempt);
    if (second > newest) newest = second;
    all.push(attempt.durationMs);
  }
  const seconds: number[] = [];
  const rate: FleetStats['rate'] = { assigned: [], failed: [], other: [] };
  const latency: FleetStats['latency'] = { p50: [], p90: [], p99: [] };
  if (attempts.length > 0) {
    const first = newest - windowSeconds + 1;
    const durations: number[][] = [];
    for (let s = first; s <= newest; s++) {
      seconds.push(s);
      rate.assigned.push(0);
      rate.failed.push(0);
      rate.other.push(0);
      durations.push([]);
    }
    for (const attempt of attempts) {
      const index = secondOf(attempt) - first;
      if (index < 0) continue;
      const series =
        attempt.status === 'assigned' ? rate.assigned : attempt.status === 'failed' ? rate.failed : rate.other;
      series[index] = (series[index] ?? 0) + 1;
      durations[index]?.push(attempt.durationMs);
    }
    for (const list of durations) {
      list.sort((a, b) => a - b);
      latency.p50.push(list.length ? percentile(list, 50) : null);
      latency.p90.push(list.length ? percentile(list, 90) : null);
      latency.p99.push(list.length ? percentile(list, 99) : null);
    }
  }
  all.sort((a, b) => a - b);
  const overall = all.length ? { p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99) } : null;
  return { total: attempts.length, seconds, rate, latency, outcomes, hubs, overall };
}

/** `assigned`, `failed 400207`, `disabled`, `unauthorized`. */
export function outcomeKey(attempt: Pick<FleetAttempt, 'status' | 'errorCode'>): string {
  return attempt.status === 'failed' && attempt.errorCode !== undefined
    ? `failed ${attempt.errorCode}`
    : attempt.status;
}

function secondOf(attempt: FleetAttempt): number {
  return Math.floor(Date.parse(attempt.timestampUtc) / 1000);
}
