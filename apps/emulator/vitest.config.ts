import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Socket tests start real TLS servers and official SDK clients; give slow CI machines room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
