import { describe, expect, it } from 'vitest';
import { percentile, summarizeLatencies } from './latency.js';

describe('percentile (nearest rank)', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it('gives observed values at the nearest rank', () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 95)).toBe(95);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile(oneToHundred, 0.5)).toBe(1);
  });

  it('handles small samples without interpolating', () => {
    expect(percentile([10], 50)).toBe(10);
    expect(percentile([10, 20], 50)).toBe(10);
    expect(percentile([10, 20], 51)).toBe(20);
    expect(percentile([10, 20, 30, 40], 95)).toBe(40);
  });

  it('rejects empty samples and out-of-range p', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('summarizeLatencies', () => {
  it('sorts numerically and reports min/mean/max', () => {
    const s = summarizeLatencies([300, 20, 1000, 5]);
    expect(s).toEqual({ count: 4, min: 5, mean: 331.25, p50: 20, p95: 1000, p99: 1000, max: 1000 });
  });

  it('is null for no values', () => {
    expect(summarizeLatencies([])).toBeNull();
  });
});
