import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Two cores: two test files at a time keeps the machine responsive for the worker processes.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The fault-injection suite runs a cluster of its own and would starve the other files: it has its
    // own command (npm run test:faults), run on its own.
    exclude: ['**/node_modules/**', '.data/**', 'test/faults/**'],
  },
});
