import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sampleLazily } from './inputs.js';
import { registerBodies } from './surfaces.js';

describe('sampleLazily', () => {
  it("gives fc.sample's values for the seed, in order, across batch boundaries", () => {
    // Bodies as text: comparing thousands of large Buffers byte by byte would take a minute.
    const body = registerBodies('device-1').map((b) => b.toString('latin1'));
    const arb = fc.record({ body, text: fc.string(), json: fc.json({ maxDepth: 3 }) });
    const expected = fc.sample(arb, { numRuns: 523, seed: 8008 });
    expect([...sampleLazily(arb, 523, 8008, 100)]).toEqual(expected);
    expect([...sampleLazily(arb, 40, 8008, 100)]).toEqual(expected.slice(0, 40));
  });

  it('generates a batch at a time, not every run up front', () => {
    let generated = 0;
    const counted = fc.nat().map((n) => {
      generated += 1;
      return n;
    });
    const inputs = sampleLazily(counted, 10_000, 1, 50);
    let consumed = 0;
    let mostAhead = 0;
    for (const _ of inputs) {
      consumed += 1;
      mostAhead = Math.max(mostAhead, generated - consumed);
    }
    expect(consumed).toBe(10_000);
    expect(generated).toBe(10_000);
    // At most one batch generated and not yet consumed (fc.sample would have made all 10,000 first).
    expect(mostAhead).toBeLessThan(50);
  });
});
