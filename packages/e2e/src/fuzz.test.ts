import { describe, expect, it } from 'vitest';
import { fuzzProblems, runFuzz } from './fuzz/run.js';

// A bounded sample of `npm run fuzz` in every `npm test`: property-based malformed inputs (fast-check)
// against the MQTT and HTTPS device API, webhook answers and the allocator. Never a crash, a 5xx or a
// hang; every device API answer DPS-shaped; a good device provisions afterwards.
describe('fuzz sample', () => {
  it('survives malformed tokens, register bodies, MQTT packets, webhook answers and allocator requests', async () => {
    const seed = Date.now() % 1_000_000;
    const summary = await runFuzz({ runs: 120, seed });
    expect({ seed, problems: fuzzProblems(summary) }).toEqual({ seed, problems: [] });
    for (const surface of summary.surfaces) expect(surface.inputs).toBeGreaterThanOrEqual(100);
  }, 300_000);
});
