import type { TestProject } from 'vitest/node';
import { type ClusterLayout, startCluster, stopCluster } from '../../scripts/redis-cluster.ts';
import { startWatchdog } from '../../scripts/watchdog.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test cluster's directory and ports (scripts/redis-cluster.ts), for REDIS_CLUSTER_NODES and restarts. */
    cluster: ClusterLayout;
  }
}

// npm run test:cluster: a 3-master Redis Cluster of its own for the run (the shared Redis is never
// touched), stopped and removed at the end, also when a test fails. A watchdog stops the nodes (the
// ones started here and any a test started again) and removes the directory if the run is killed.
export default async function setup(project: TestProject) {
  const layout = await startCluster();
  const watchdog = startWatchdog();
  watchdog.remove(layout.dir);
  // By their pid files: a test that restarts a node gives it a new pid.
  watchdog.stopPidFiles({ name: 'Redis Cluster node', dir: layout.dir, group: true, signal: 'SIGKILL' });
  console.log(`[test cluster] 3 masters on ports ${layout.ports.join(', ')} in ${layout.dir}`);
  project.provide('cluster', layout);
  return async () => {
    await stopCluster(layout);
    await watchdog.done();
  };
}
