import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// npm run test:cluster: the pipeline on a local 3-master Redis Cluster with sharded queues. Not part
// of npm test, whose default include (*.test.ts) does not match these *.cluster.ts files.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/cluster/**/*.cluster.ts'],
    globalSetup: ['test/support/global-setup.ts', 'test/cluster/global-setup.ts'],
    pool: 'forks',
    // One file at a time: they share the cluster, and one of them restarts its nodes.
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
