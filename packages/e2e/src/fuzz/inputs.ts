import fc from 'fast-check';

/** Inputs generated at a time: a few MB of register bodies (they average ~24 KB). */
export const INPUT_BATCH = 250;

/**
 * The values `fc.sample(arb, { numRuns: runs, seed })` gives, in the same order, generated
 * `batch` at a time as they are consumed. `fc.sample` builds every value first: at 10,000 runs
 * the register bodies alone were 240 MB of Buffers held for a whole surface, which glibc kept as
 * process RSS after they were freed (RSS grew with the number of inputs). Each batch starts at its
 * run index through fast-check's replay `path`, which gives exactly the value of that run (same
 * random stream and bias), so a seed still names the same inputs.
 */
export function* sampleLazily<T>(arb: fc.Arbitrary<T>, runs: number, seed: number, batch = INPUT_BATCH): Generator<T> {
  for (let start = 0; start < runs; start += batch) {
    yield* fc.sample(arb, { numRuns: Math.min(batch, runs - start), seed, path: String(start) });
  }
}
