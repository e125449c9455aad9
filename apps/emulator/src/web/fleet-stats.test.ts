import { describe, expect, it } from 'vitest';
import { type FleetAttempt, fleetStats } from './fleet-stats.js';

const at = (second: number, durationMs: number, extra: Partial<FleetAttempt> = {}): FleetAttempt => ({
  timestampUtc: new Date(Date.UTC(2026, 11, 2, 12, 0, second, 250)).toISOString(),
  durationMs,
  status: 'assigned',
  assignedHub: 'hub-a',
  ...extra,
});

describe('fleetStats', () => {
  it('counts per second up to the newest attempt, with nearest-rank latency percentiles', () => {
    const base = Date.UTC(2026, 11, 2, 12, 0, 0) / 1000;
    const stats = fleetStats(
      [
        at(0, 10),
        at(0, 20),
        at(0, 30),
        at(0, 40),
        at(2, 5, { status: 'failed', errorCode: 400207, assignedHub: undefined }),
        at(2, 7, { assignedHub: 'hub-b' }),
        at(2, 1, { status: 'unauthorized', assignedHub: undefined }),
      ],
      3,
    );
    expect(stats.seconds).toEqual([base, base + 1, base + 2]);
    expect(stats.rate).toEqual({ assigned: [4, 0, 1], failed: [0, 0, 1], other: [0, 0, 1] });
    expect(stats.latency).toEqual({ p50: [20, null, 5], p90: [40, null, 7], p99: [40, null, 7] });
    expect(stats.outcomes).toEqual({ assigned: 5, 'failed 400207': 1, unauthorized: 1 });
    expect(stats.hubs).toEqual({ 'hub-a': 4, 'hub-b': 1 });
    expect(stats.overall).toEqual({ p50: 10, p90: 40, p99: 40 });
    expect(stats.total).toBe(7);
  });

  it('leaves attempts older than the window out of the series but not out of the split', () => {
    const stats = fleetStats([at(0, 1), at(10, 2)], 5);
    expect(stats.seconds).toHaveLength(5);
    expect(stats.rate.assigned.reduce((a, b) => a + b)).toBe(1);
    expect(stats.outcomes.assigned).toBe(2);
  });

  it('is empty for no attempts', () => {
    expect(fleetStats([])).toEqual({
      total: 0,
      seconds: [],
      rate: { assigned: [], failed: [], other: [] },
      latency: { p50: [], p90: [], p99: [] },
      outcomes: {},
      hubs: {},
      overall: null,
    });
  });
});
