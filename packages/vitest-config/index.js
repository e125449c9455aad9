// Plain JavaScript on purpose: vitest loads a package's config bundle with Node, and Node 20 cannot
// import TypeScript from a dependency.
import { defineConfig, mergeConfig } from 'vitest/config';

/**
 * What every package's tests share. The suite starts real TLS servers, official SDK clients and
 * child processes, and must pass on a 2-core CI machine that is busy with other work, so the
 * timeouts are there to stop a hung test, not to measure speed (speed lives in `npm run bench`).
 * 60 s was not enough for the e2e scenarios (device processes against the emulator and the
 * allocator) with the machine at load 40; a test that passes takes no longer for a higher limit.
 */
export const baseConfig = defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});

/** The base config, with a package's own additions merged in (arrays are concatenated). */
export function vitestConfig(overrides = {}) {
  return mergeConfig(baseConfig, overrides);
}
