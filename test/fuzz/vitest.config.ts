import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The hostile-request fuzz only (npm run test:fuzz): its file ends in .fuzz.ts, so `npm test` never
// picks it up. It reuses the tests' global setup (a migrated template database to clone).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/fuzz/**/*.fuzz.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
