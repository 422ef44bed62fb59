import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The real-browser checks (npm run test:browser): headless Chromium against the API. Not part of
// npm test, whose default include (*.test.ts) does not match these *.browser.ts files.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/browser/**/*.browser.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
