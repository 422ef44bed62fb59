import { Queue } from 'bullmq';
import { queueNames } from '../../config/index.ts';
import { servedOnShard, shardPrefix } from '../../queues/shards.ts';
import { createRedis, type RedisClient } from '../../runtime/redis.ts';
import { commandOf, freePort } from '../../scripts/processes.ts';
import type { DemoKeys } from '../../scripts/seed.ts';
import { type Processes, startProcesses } from '../../test/faults/processes.ts';
import { sleep } from '../support.ts';
import type { Phase } from './ceiling.ts';
import { childrenOf } from './proc-stat.ts';
import type { BenchServers } from './servers.ts';

// The product as it is deployed: the sandbox providers, the API (node api/server.ts) and the worker
// processes (node workers/main.ts), configured by their environment only, started as the fault suite
// starts them, each writing its log under the run's directory.

export const QUEUE_PREFIX = '{orderflow}';
export const REGION = 'eu';
const STOCK = 1_000_000; // the most an adjustment may set: no order of the run waits on stock
const STARTUP_MS = 60_000;

export type Product = {
  apiUrl: string;
  keys: DemoKeys;
  processes: Processes;
  /** The application's processes by name: api, worker-1…, sandbox. */
  pids: Record<string, number>;
};

/**
 * The Redis the product runs on: the bench's one server, or a local cluster with the pipeline sharded
 * over its masters (QUEUE_SHARDS).
 */
export type ProductRedis = {
  /** REDIS_URL, or REDIS_CLUSTER_NODES and QUEUE_SHARDS. */
  env: Record<string, string>;
  /** A connection of the bench's own to it. */
  connect(): RedisClient;
  /** The queue prefix of each shard. */
  prefixes: string[];
};

export function singleRedis(redisUrl: string): ProductRedis {
  return { env: { REDIS_URL: redisUrl }, connect: () => createRedis(redisUrl), prefixes: [QUEUE_PREFIX] };
}

export function shardedCluster(nodes: ReadonlyArray<{ host: string; port: number }>, shards: number): ProductRedis {
  return {
    env: { REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','), QUEUE_SHARDS: String(shards) },
    connect: () => createRedis({ clusterNodes: [...nodes] }),
    prefixes: Array.from({ length: shards }, (_, shard) => shardPrefix(QUEUE_PREFIX, shard, shards)),
  };
}

export async function startProduct(
  options: {
    servers: BenchServers;
    redis: ProductRedis;
    keys: DemoKeys;
    workers: number;
    concurrency: number;
    logDir: string;
  },
  phase: Phase,
  cleanups: Array<() => Promise<unknown>>,
): Promise<Product> {
  const ports = {
    api: await freePort(),
    gateway: await freePort(),
    carrier: await freePort(),
    bedrock: await freePort(),
  };
  const urls = {
    api: `http://127.0.0.1:${ports.api}`,
    gateway: `http://127.0.0.1:${ports.gateway}`,
    carrier: `http://127.0.0.1:${ports.carrier}`,
  };
  const processes = await startProcesses({
    logDir: options.logDir,
    workerCount: options.workers,
    readyUrls: urls,
    sandboxEnv: {
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_GATEWAY_PORT: String(ports.gateway),
      SANDBOX_CARRIER_PORT: String(ports.carrier),
      SANDBOX_BEDROCK_PORT: String(ports.bedrock),
      SANDBOX_LATENCY_MS: '0',
      SANDBOX_DECLINE_RATE: '0',
      SANDBOX_FAILURE_RATE: '0',
      SANDBOX_SEED: '1',
    },
    env: {
      DATABASE_URL: options.servers.appUrl,
      ...options.redis.env,
      QUEUE_PREFIX,
      HOST: '127.0.0.1',
      PORT: String(ports.api),
      PAYMENT_GATEWAY_URL: urls.gateway,
      CARRIER_URL: urls.carrier,
      WORKER_CONCURRENCY: String(options.concurrency),
      // The three demo customers' keys post every order, as fast as the pipeline takes them: on a faster
      // machine that is more than a key's write budget, and the bench measures the pipeline, not the limiter.
      RATE_LIMIT_WRITES: '0',
      LOG_LEVEL: 'warn',
    },
  });
  cleanups.push(() => processes.stopAll());
  const pids = {
    api: childRunning('api/server.ts'),
    ...workerPids(processes),
    sandbox: childRunning('sandbox/server.ts'),
  };
  for (const [name, pid] of Object.entries(pids)) phase.watchdog.stop({ name, pid });

  await waitForWorkers({
    redis: options.redis,
    workers: options.workers,
    unexpectedExit: () => processes.unexpectedExits()[0],
    signal: phase.signal,
  });
  for (const sku of options.keys.skus) {
    const response = await fetch(`${urls.api}/admin/inventory/${sku}/adjust`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.keys.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ region: REGION, available: STOCK }),
    });
    if (!response.ok) throw new Error(`adjusting ${sku} answered ${response.status}: ${await response.text()}`);
  }
  return { apiUrl: urls.api, keys: options.keys, processes, pids };
}

function workerPids(processes: Processes): Record<string, number> {
  return Object.fromEntries(processes.workers().map((worker, i) => [`worker-${i + 1}`, worker.pid]));
}

/** The pid of this process's child running `entry` (startProcesses keeps its children to itself). */
function childRunning(entry: string): number {
  const pid = childrenOf(process.pid).find((child) => commandOf(child)?.includes(entry));
  if (pid === undefined) throw new Error(`no child process runs ${entry}`);
  return pid;
}

/** Start-up (loading TypeScript, connecting) is not throughput: wait until every process serves every queue. */
/** Until every queue has `workers` worker processes serving it; fails at once if one of them exited. */
export async function waitForWorkers(options: {
  redis: ProductRedis;
  workers: number;
  unexpectedExit: () => string | undefined;
  signal: AbortSignal;
}) {
  const { workers, signal } = options;
  const connection = options.redis.connect();
  const queues = options.redis.prefixes.flatMap((prefix, shard) =>
    queueNames.filter((name) => servedOnShard(name, shard)).map((name) => new Queue(name, { connection, prefix })),
  );
  try {
    for (const deadline = performance.now() + STARTUP_MS; ; await sleep(100)) {
      signal.throwIfAborted();
      const exited = options.unexpectedExit();
      if (exited) throw new Error(`while the workers were starting, ${exited}`);
      const counts = await Promise.all(queues.map((queue) => queue.getWorkersCount()));
      if (counts.every((count) => count >= workers)) return;
      if (performance.now() > deadline) {
        const serving = queues.map((queue, i) => `${queue.opts.prefix}:${queue.name}: ${counts[i]}`).join(', ');
        throw new Error(
          `the ${workers} worker processes did not all serve every queue in ${STARTUP_MS} ms (${serving})`,
        );
      }
    }
  } finally {
    await Promise.all(queues.map((queue) => queue.close()));
    connection.disconnect();
  }
}
