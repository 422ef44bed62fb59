import { type ClusterLayout, clusterStates } from '../../scripts/redis-cluster.ts';
import { waitFor } from '../support/wait-for.ts';

/** Waits until every node of the test cluster says cluster_state:ok (the test's timeout is the backstop). */
export function clusterOk(layout: ClusterLayout): Promise<string[]> {
  return waitFor(
    'the cluster to be ok again',
    () => clusterStates(layout),
    (states) => states.every((s) => s === 'ok'),
  );
}
