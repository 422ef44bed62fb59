import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { z } from 'zod';
import { createApp } from '../api/app.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { startSandbox } from '../sandbox/server.ts';
import { type DemoKeys, demoAddress, seedDemo } from '../scripts/seed.ts';
import { sql } from '../sql/database.ts';
import { setAvailable } from '../sql/inventory.ts';
import { migrate } from '../sql/migrate.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { adminQuery, deleteKeys, sleep } from './support.ts';

// The whole system in the bench's process, as test/support/harness.ts assembles it for the tests: a fresh
// database with the demo seed, a queue prefix and Redis namespace of its own, the sandbox providers on
// free ports, the workers, and the API called with app.request() (no port is opened).

export type System = { deps: Deps; apiDeps: Deps; app: ReturnType<typeof createApp>; keys: DemoKeys; config: Config };
export type SystemOptions = {
  adminUrl: string;
  redisUrl: string;
  /** Settings on top of the ones that isolate the run (database, prefix, namespace, providers). */
  env: Record<string, string>;
  workerConcurrency: number;
  stock: { region: string; skus: readonly string[]; available: number };
};
export type Cleanups = Array<() => Promise<unknown>>;

/** Starts everything; each part pushes its own cleanup as soon as it exists, to be run in reverse. */
export async function startSystem(options: SystemOptions, cleanups: Cleanups): Promise<System> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `orderflow_bench_${suffix}`;
  await adminQuery(options.adminUrl, `CREATE DATABASE "${dbName}"`);
  cleanups.push(() => adminQuery(options.adminUrl, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
  const dbUrl = new URL(options.adminUrl);
  dbUrl.pathname = `/${dbName}`;
  await migrate(dbUrl.toString());
  const keys = await seedDemo(dbUrl.toString());
  const sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, latencyMs: 0, seed: 1 });
  cleanups.push(() => sandbox.close());
  const config = loadConfig({
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: options.redisUrl,
    QUEUE_PREFIX: `{ofb-${suffix}}`,
    REDIS_NAMESPACE: `ofb-${suffix}`,
    PAYMENT_GATEWAY_URL: sandbox.gateway.url,
    CARRIER_URL: sandbox.carrier.url,
    LOG_LEVEL: 'warn',
    ...options.env,
  });
  const log = createLogger(config.logLevel, 'bench');
  const deps = await createDeps(config, log);
  cleanups.push(() => deps.close());
  // The API gets its own fail-fast, auto-pipelined Redis connection and pool, as api/server.ts builds it.
  const apiDeps = await createDeps(config, log, { failFastRedis: true, autoPipelining: true });
  cleanups.push(() => apiDeps.close());
  cleanups.push(() => deleteKeys(deps.redis, `${config.namespace}:*`));
  cleanups.push(() => Promise.all(Object.values(deps.queues.queues).map((q) => q.obliterate({ force: true }))));
  // Fail-fast means no offline queue: a command sent before the connection is up would fail.
  if (apiDeps.redis.status !== 'ready') await once(apiDeps.redis, 'ready');
  const { region, skus, available } = options.stock;
  for (const sku of skus) await setAvailable(deps.db, sku, region, available);
  const workers = await startWorkers(deps, deps.queues, {
    queues: config.worker.queues,
    concurrency: options.workerConcurrency,
    reconcileEveryMs: config.reconciler.everyMs,
    stuckAfterMs: config.reconciler.stuckAfterMs,
    retryPolicy: config.orderRetry,
  });
  cleanups.push(() => Promise.all(workers.map((w) => w.close())));
  const app = createApp({
    ...apiDeps,
    bodyLimitBytes: config.http.bodyLimitBytes,
    idempotencyStaleAfterMs: config.idempotency.inFlightTimeoutMs,
    recentOrdersTtlMs: config.cache.ttlMs.recentOrders,
    rateLimit: config.rateLimit,
  });
  console.log(`database ${dbName}, Redis namespace ${config.namespace}, queue prefix ${config.redis.prefix}`);
  return { deps, apiDeps, app, keys, config };
}

export async function placeOrder(system: System, region: string, sku: string, customer: number): Promise<string> {
  const response = await system.app.request('/orders', {
    method: 'POST',
    headers: { authorization: `Bearer ${system.keys.customers[customer]!.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      region,
      items: [{ sku, quantity: 1 }],
      shippingAddress: demoAddress,
      payment: { token: '4242424242424242' },
    }),
  });
  const body = (await response.json()) as { id: string };
  if (response.status !== 201) throw new Error(`POST /orders answered ${response.status}: ${JSON.stringify(body)}`);
  return body.id;
}

/**
 * Open loop: order i is sent at i/rate seconds whatever the earlier ones are doing, by the seed's
 * customers in turn. Each accepted order's id is added to `ids` as it comes back.
 */
export async function submitBurst(
  system: System,
  burst: { region: string; sku: string; ratePerSecond: number; count: number },
  ids: string[],
  signal: AbortSignal,
): Promise<void> {
  const started = performance.now();
  const errors: unknown[] = [];
  const sending: Array<Promise<void>> = [];
  for (let i = 0; i < burst.count && errors.length === 0; i++) {
    await sleep(Math.max(0, started + (i * 1000) / burst.ratePerSecond - performance.now()));
    signal.throwIfAborted();
    const customer = i % system.keys.customers.length;
    // Settled at once, so a refusal is recorded rather than left as an unhandled rejection meanwhile.
    const placing = placeOrder(system, burst.region, burst.sku, customer);
    sending.push(
      placing.then(
        (id) => void ids.push(id),
        (error) => void errors.push(error),
      ),
    );
  }
  await Promise.all(sending);
  if (errors.length > 0) throw new Error(`${errors.length} orders were refused`, { cause: errors[0] });
}

/** Waits until `expected` orders are terminal, printing progress each second; all must be COMPLETED. */
export async function waitForOrders(
  system: System,
  ids: readonly string[],
  expected: number,
  run: { label: string; signal: AbortSignal; stallTimeoutMs: number; detail?: () => string },
): Promise<void> {
  const counts = z.object({ done: z.number(), completed: z.number() });
  let [lastDone, lastChange, lastPrint] = [-1, performance.now(), 0];
  for (;;) {
    run.signal.throwIfAborted();
    const { done, completed } = await system.deps.db.one(sql.type(counts)`
      SELECT (count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')))::int AS done,
        (count(*) FILTER (WHERE status = 'COMPLETED'))::int AS completed
      FROM orders WHERE id = ANY(${sql.array([...ids], 'uuid')})`);
    const now = performance.now();
    if (done !== lastDone) [lastDone, lastChange] = [done, now];
    if (now - lastPrint > 1_000 || done === expected) {
      const detail = run.detail ? `; ${run.detail()}` : '';
      console.log(`${run.label}: ${ids.length}/${expected} submitted, ${done} finished${detail}`);
      lastPrint = now;
    }
    if (done === expected && completed !== done) throw new Error(`${run.label}: ${done - completed} did not complete`);
    if (done === expected) return;
    if (now - lastChange > run.stallTimeoutMs) {
      throw new Error(`${run.label}: no order finished for ${run.stallTimeoutMs} ms`);
    }
    await sleep(100);
  }
}
