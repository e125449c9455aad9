import { describe, expect, it } from 'vitest';
import { type FuzzSummary, formatFuzzSummary, memoryProblems } from './run.js';

const MB = 1024 * 1024;
const summary = (memory: Partial<FuzzSummary['memory']>): FuzzSummary => ({
  seed: 1,
  surfaces: [],
  crashes: [],
  goodRegistrations: { mqtt: 'assigned to hub', http: 'assigned to hub' },
  memory: {
    startHeapBytes: 100 * MB,
    endHeapBytes: 100 * MB,
    startRssBytes: 250 * MB,
    endRssBytes: 250 * MB,
    ...memory,
  },
  durationMs: 1_000,
});

describe('memoryProblems', () => {
  it('accepts heap and RSS back within 120% of their start', () => {
    expect(memoryProblems(summary({ endHeapBytes: 120 * MB, endRssBytes: 300 * MB }))).toEqual([]);
  });

  it('names the RSS and the heap when either ends above 120% of its start', () => {
    expect(memoryProblems(summary({ endRssBytes: 869 * MB }))).toEqual(['RSS ended at 348% of its start (bound 120%)']);
    expect(memoryProblems(summary({ endHeapBytes: 121 * MB }))).toEqual([
      'heap after GC ended at 121% of its start (bound 120%)',
    ]);
  });
});

describe('formatFuzzSummary', () => {
  it('prints the RSS start, end and ratio beside the heap', () => {
    expect(formatFuzzSummary(summary({ endRssBytes: 275 * MB }))).toContain(
      'heap used 100.0 MB -> 100.0 MB (100% of start); RSS 250.0 MB -> 275.0 MB (110% of start); bound 120%',
    );
  });
});
