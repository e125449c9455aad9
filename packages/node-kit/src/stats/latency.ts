/**
 * Nearest-rank percentile of ascending `sorted` values: the smallest value such that at least p% of
 * values are <= it. Always an observed value, so p100 is the max and small samples stay honest.
 * The one definition every dpskit report and benchmark uses, so their numbers compare.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty sample');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], not ${p}`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Count, min, mean, max and the p50/p95/p99 nearest-rank percentiles of unsorted values; null for none. */
export function summarizeLatencies(values: readonly number[]): LatencySummary | null {
  if (values.length === 0) return null;
  const list = Array.from(Float64Array.from(values).sort());
  let sum = 0;
  for (const v of list) sum += v;
  return {
    count: list.length,
    min: list[0]!,
    mean: sum / list.length,
    p50: percentile(list, 50),
    p95: percentile(list, 95),
    p99: percentile(list, 99),
    max: list[list.length - 1]!,
  };
}
