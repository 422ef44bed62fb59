import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { nodePid, startCluster, stopCluster } from '../scripts/redis-cluster.ts';
import { seedDemo } from '../scripts/seed.ts';
import { startWatchdog } from '../scripts/watchdog.ts';
import { runCeiling } from './pipeline/ceiling.ts';
import { type FlowShape, flowShapes } from './pipeline/ceiling-flow.ts';
import { type Monitor, runIdleLatency, runThroughput } from './pipeline/product.ts';
import { shardedCluster, singleRedis, startProduct } from './pipeline/product-system.ts';
import { createProgress } from './pipeline/progress.ts';
import { buildResults, printReport, writeResults } from './pipeline/report.ts';
import { startBenchServers } from './pipeline/servers.ts';
import { CountingClient, StatisticsReader } from './pipeline/stats.ts';
import { runBenchmark } from './support.ts';

// npm run bench: the order pipeline end to end against what BullMQ alone can do on the same machine.
// On a PostgreSQL and a Redis of its own: (1) the ceiling, a bare BullMQ flow of the product's shape with
// no-op processors, and the floor, the product's own seven jobs bare (bench/pipeline/ceiling-flow.ts);
// (2) the product, orders over HTTP to the real API and worker processes, with CPU per process and
// PostgreSQL and Redis work per order; (3) one order at a time on the idle system, for latency.

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    clients: { type: 'string' },
    shards: { type: 'string' },
    quick: { type: 'boolean' },
  },
});
function count(name: keyof typeof args, value: string | boolean | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}
const quick = args.quick ?? false;
const ORDERS = count('orders', args.orders, quick ? 200 : 2000);
const CEILING_FLOWS = quick ? 200 : 2000;
const WORKERS = count('workers', args.workers, 2);
const CONCURRENCY = count('concurrency', args.concurrency, 10); // WORKER_CONCURRENCY's own default
const CLIENTS = count('clients', args.clients, 32);
// More than one: the product runs on a local Redis Cluster of that many masters, QUEUE_SHARDS the same.
const SHARDS = count('shards', args.shards, 1);
const WARMUP = quick ? 20 : 50;
const IDLE_ORDERS = quick ? 10 : 50;

async function main(interrupted: AbortSignal): Promise<void> {
  const startedAt = new Date();
  const loadavgAtStart = loadavg();
  const progress = createProgress();
  const log = (message: string) => progress.note(message);
  const cleanups: Array<() => Promise<unknown>> = [];
  const watchdog = startWatchdog();
  cleanups.push(() => watchdog.done());
  const logDir = await mkdtemp(join(tmpdir(), 'orderflow-bench-logs-'));
  let succeeded = false;
  try {
    const servers = await startBenchServers(cleanups, log);
    const keys = await seedDemo(servers.appUrl);
    const redis = new Redis(servers.redisUrl, { maxRetriesPerRequest: null });
    cleanups.push(() => redis.quit());
    const phase = { signal: interrupted, progress, watchdog };

    const bare = async (shape: FlowShape) => {
      const jobs = flowShapes[shape].length;
      log(
        `${shape}: ${WORKERS} worker processes x ${CONCURRENCY} per queue, ${CEILING_FLOWS} flows of ${jobs} no-op jobs`,
      );
      const result = await runCeiling(
        {
          redis,
          redisUrl: servers.redisUrl,
          redisPid: servers.redisPid,
          processes: WORKERS,
          concurrency: CONCURRENCY,
          flows: CEILING_FLOWS,
          warmup: WARMUP,
          clients: CLIENTS,
          shape,
        },
        phase,
      );
      log(`${shape}: ${result.flowsPerSecond.toFixed(1)} flows/s`);
      return result;
    };
    const ceiling = await bare('ceiling');
    const floor = await bare('floor');

    let productRedis = singleRedis(servers.redisUrl);
    let redisNodes = [redis];
    let redisPids: Record<string, number> = { redis: servers.redisPid };
    if (SHARDS > 1) {
      log(`a Redis Cluster of ${SHARDS} masters for the product, its pipeline on ${SHARDS} shards`);
      const cluster = await startCluster(SHARDS);
      cleanups.push(() => stopCluster(cluster));
      watchdog.remove(cluster.dir);
      watchdog.stopPidFiles({ name: 'Redis Cluster node', dir: cluster.dir, group: true, signal: 'SIGKILL' });
      const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
      productRedis = shardedCluster(nodes, SHARDS);
      redisNodes = nodes.map((node) => new Redis({ ...node, maxRetriesPerRequest: null }));
      cleanups.push(() => Promise.all(redisNodes.map((node) => node.quit())));
      redisPids = Object.fromEntries(
        await Promise.all(
          cluster.ports.map(async (port) => [`redis-${port}`, (await nodePid(cluster, port))!] as const),
        ),
      );
    }

    log(`product: API, ${WORKERS} worker processes (WORKER_CONCURRENCY=${CONCURRENCY}), sandbox; logs in ${logDir}`);
    const product = await startProduct(
      { servers, redis: productRedis, keys, workers: WORKERS, concurrency: CONCURRENCY, logDir },
      phase,
      cleanups,
    );
    const stats = new StatisticsReader(servers.monitorStatsUrl);
    await stats.connect();
    cleanups.push(() => stats.close());
    const app = new CountingClient(servers.monitorAppUrl);
    await app.connect();
    cleanups.push(() => app.close());
    const monitor: Monitor = { app, stats, redisNodes, postgresPid: servers.postgresPid, redisPids };
    const throughput = await runThroughput(
      product,
      monitor,
      { orders: ORDERS, warmup: WARMUP, clients: CLIENTS },
      phase,
    );
    log(
      `product: ${throughput.ordersPerSecond.toFixed(1)} orders/s; idle latency, ${IDLE_ORDERS} orders one at a time after a first one`,
    );
    const idle = await runIdleLatency(product, monitor, { orders: IDLE_ORDERS, from: WARMUP + ORDERS }, phase);

    const parameters = {
      orders: ORDERS,
      ceilingFlows: CEILING_FLOWS,
      warmup: WARMUP,
      idleOrders: IDLE_ORDERS,
      workerProcesses: WORKERS,
      workerConcurrency: CONCURRENCY,
      clientsInFlight: CLIENTS,
      redis:
        SHARDS > 1
          ? `a local Redis Cluster of ${SHARDS} masters, QUEUE_SHARDS=${SHARDS}; the ceiling on a single Redis`
          : 'a single Redis',
      queueShards: SHARDS,
      quick,
      ceilingRunsIn: 'worker processes (bench/pipeline/ceiling-worker.ts), one BullMQ Worker per queue',
      sandboxLatencyMs: 0,
      orderBody: '1 line, region eu, SKUs and the 3 demo customers in turn, an Idempotency-Key each',
    };
    const results = buildResults(
      { parameters, loadavgAtStart, postgresVersion: servers.postgresVersion, startedAt },
      { ceiling, floor },
      throughput,
      idle,
    );
    printReport(results);
    await writeResults(results, SHARDS > 1 ? `pipeline-shards-${SHARDS}` : 'pipeline');
    succeeded = true;
  } finally {
    progress.end();
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
    }
    if (succeeded) await rm(logDir, { recursive: true, force: true });
    else console.error(`the application's logs are kept in ${logDir}`);
  }
}

await runBenchmark(main);
