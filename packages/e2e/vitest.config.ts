import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Each scenario starts real servers and device processes; CI machines have two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
