import type { Cluster } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createRedis } from '../../runtime/redis.ts';
import { clusterStates, killNode, startNode } from '../../scripts/redis-cluster.ts';
import { waitFor } from '../support/wait-for.ts';
import { clusterOk } from './cluster-ok.ts';

// What a worker's connection meets right after a master restarts: nodes that answer but report
// cluster_state:fail for a while. ioredis's ready check then reconnects without ever settling the
// promise of connect(), and BullMQ awaits that promise when it resets a blocking connection; the
// connection runtime/redis.ts makes must be ready as soon as it knows the slots.

const layout = inject('cluster');
let client: Cluster | undefined;
let downPort: number | undefined;

afterEach(async () => {
  client?.disconnect();
  client = undefined;
  if (downPort !== undefined) {
    await startNode(layout, downPort);
    downPort = undefined;
  }
  await clusterOk(layout);
});

describe('a connection made while the cluster reports failing', () => {
  it('is ready once it knows the slots, and serves commands when the cluster is ok again', async () => {
    const [down, ...up] = layout.ports as [number, ...number[]];
    await killNode(layout, down);
    downPort = down;
    // The other masters mark the cluster failing once the node has been unreachable for
    // cluster-node-timeout (2 s on the test cluster: scripts/redis-cluster.ts).
    await waitFor(
      'the other masters to report the cluster failing',
      () => clusterStates({ ...layout, ports: up }),
      (s) => s.every((x) => x === 'fail'),
    );

    client = createRedis({ clusterNodes: up.map((port) => ({ host: '127.0.0.1', port })) }) as Cluster;
    await waitFor(
      'the connection to be ready',
      async () => client?.status,
      (status) => status === 'ready',
    );

    await startNode(layout, down);
    downPort = undefined;
    await clusterOk(layout);
    expect(await client.set('{connect-test}:key', 'value')).toBe('OK');
    expect(await client.get('{connect-test}:key')).toBe('value');
    await client.del('{connect-test}:key');
  });
});
